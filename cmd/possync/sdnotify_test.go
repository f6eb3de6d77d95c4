package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// listenNotify opens a unixgram socket standing in for systemd's notify
// socket and points $NOTIFY_SOCKET at it.
func listenNotify(t *testing.T, addr string) *net.UnixConn {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", addr)
	return conn
}

// recv returns the next datagram, or "" when none arrives within d.
func recv(t *testing.T, conn *net.UnixConn, d time.Duration) string {
	t.Helper()
	buf := make([]byte, 4096)
	if err := conn.SetReadDeadline(time.Now().Add(d)); err != nil {
		t.Fatal(err)
	}
	n, err := conn.Read(buf)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ""
	}
	if err != nil {
		t.Fatalf("read notify socket: %v", err)
	}
	return string(buf[:n])
}

func TestSdNotifyWithoutSocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	sent, err := sdNotify("READY=1")
	if sent || err != nil {
		t.Fatalf("sdNotify without NOTIFY_SOCKET = %v, %v, want false, nil", sent, err)
	}
}

func TestSdNotify(t *testing.T) {
	tests := []struct {
		name string
		addr string
	}{
		{"path", filepath.Join(t.TempDir(), "notify.sock")},
		{"abstract", fmt.Sprintf("@possync-test-%d-%d", os.Getpid(), time.Now().UnixNano())},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := listenNotify(t, tt.addr)
			const state = "READY=1\nSTATUS=serving on :8079"
			sent, err := sdNotify(state)
			if !sent || err != nil {
				t.Fatalf("sdNotify(%q) = %v, %v, want true, nil", state, sent, err)
			}
			if got := recv(t, conn, 5*time.Second); got != state {
				t.Fatalf("received %q, want %q", got, state)
			}
		})
	}
}

func TestSdNotifyNoListener(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "absent.sock"))
	if sent, err := sdNotify("READY=1"); sent || err == nil {
		t.Fatalf("sdNotify to a missing socket = %v, %v, want false and an error", sent, err)
	}
}

// syncBuffer is a bytes.Buffer safe for the watchdog goroutine's logger.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRunWatchdog(t *testing.T) {
	conn := listenNotify(t, filepath.Join(t.TempDir(), "notify.sock"))
	t.Setenv("WATCHDOG_USEC", "40000") // ping every 20ms
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))

	var unhealthy atomic.Bool
	var checks atomic.Int64
	healthy := func() error {
		checks.Add(1)
		if unhealthy.Load() {
			return errors.New("store closed")
		}
		return nil
	}
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		runWatchdog(ctx, healthy, logger)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})

	for i := 0; i < 3; i++ {
		if got := recv(t, conn, 5*time.Second); got != "WATCHDOG=1" {
			t.Fatalf("ping %d: received %q, want %q", i, got, "WATCHDOG=1")
		}
	}

	// Once a failed check has run, the pings sent before it are all queued;
	// drain them, then no ping may arrive across further failed checks.
	unhealthy.Store(true)
	waitChecks(t, &checks, checks.Load()+2)
	for recv(t, conn, 10*time.Millisecond) != "" {
	}
	waitChecks(t, &checks, checks.Load()+3)
	if got := recv(t, conn, 10*time.Millisecond); got != "" {
		t.Fatalf("received %q while unhealthy, want no ping", got)
	}
	if !strings.Contains(logs.String(), "store closed") {
		t.Errorf("log = %q, want the health check error", logs.String())
	}

	// Healthy again: pings resume.
	unhealthy.Store(false)
	if got := recv(t, conn, 5*time.Second); got != "WATCHDOG=1" {
		t.Fatalf("after recovery: received %q, want %q", got, "WATCHDOG=1")
	}

	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("runWatchdog did not return after cancel")
	}
}

func waitChecks(t *testing.T, checks *atomic.Int64, n int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for checks.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("health checks = %d, want %d within 5s", checks.Load(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRunWatchdogDisabled(t *testing.T) {
	tests := []struct {
		name, usec, pid string
	}{
		{"no WATCHDOG_USEC", "", ""},
		{"bad WATCHDOG_USEC", "soon", ""},
		{"other process", "40000", strconv.Itoa(os.Getpid() + 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := listenNotify(t, filepath.Join(t.TempDir(), "notify.sock"))
			t.Setenv("WATCHDOG_USEC", tt.usec)
			t.Setenv("WATCHDOG_PID", tt.pid)
			done := make(chan struct{})
			go func() {
				defer close(done)
				runWatchdog(context.Background(), func() error { return nil }, slog.New(slog.DiscardHandler))
			}()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("runWatchdog kept running without a watchdog for this process")
			}
			if got := recv(t, conn, 50*time.Millisecond); got != "" {
				t.Fatalf("received %q, want nothing", got)
			}
		})
	}
}
