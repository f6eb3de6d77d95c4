package main

import (
	"context"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"
)

// sdNotify sends state (e.g. "READY=1\nSTATUS=serving") to the service
// manager over $NOTIFY_SOCKET, as sd_notify(3) does. It reports sent=false
// and no error when the socket is not set (not started by systemd). An
// address starting with '@' is an abstract socket; Go maps the '@' to NUL.
func sdNotify(state string) (sent bool, err error) {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return false, nil
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return false, err
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return false, err
	}
	return true, nil
}

// runWatchdog feeds the systemd watchdog (WatchdogSec=) with "WATCHDOG=1"
// at half of $WATCHDOG_USEC while healthy returns nil. When healthy fails it
// logs a warning and skips the ping, so a stuck server is restarted by
// systemd. It returns at once when the watchdog is not enabled for this
// process ($WATCHDOG_USEC unset, or $WATCHDOG_PID names another process),
// and otherwise when ctx is done.
func runWatchdog(ctx context.Context, healthy func() error, logger *slog.Logger) {
	usec, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return
	}
	interval := time.Duration(usec) * time.Microsecond / 2
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		if err := healthy(); err != nil {
			logger.Warn("health check failed, not feeding the watchdog", "err", err)
		} else if _, err := sdNotify("WATCHDOG=1"); err != nil {
			logger.Warn("watchdog notify", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}
