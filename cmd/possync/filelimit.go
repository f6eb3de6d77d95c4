package main

import (
	"fmt"
	"log/slog"
	"syscall"
)

// fdReserve is the file descriptors possync needs besides its connections:
// Badger's files (value logs, SSTs, manifest), the listener, mDNS sockets,
// the runtime's epoll and pipes, and refusals being answered.
const fdReserve = 256

// fileLimitProblem says why maxConns does not fit the process's open-file
// limit, or "" if it does (or the limit cannot be read). Beyond the limit,
// accepting fails with EMFILE; possync retries, but connections wait in
// the kernel's queue instead of getting the JSON-RPC refusal.
func fileLimitProblem(maxConns int) string {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return ""
	}
	if uint64(maxConns)+fdReserve <= rl.Cur {
		return ""
	}
	fix := fmt.Sprintf("raise the limit to at least %d (LimitNOFILE= in the unit, ulimit -n)", uint64(maxConns)+fdReserve)
	if rl.Cur > fdReserve {
		fix += fmt.Sprintf(" or lower http.max_conns to at most %d", rl.Cur-fdReserve)
	}
	return fmt.Sprintf("http.max_conns = %d does not fit this process's open-file limit of %d "+
		"(possync needs about %d more for its own files); %s", maxConns, rl.Cur, fdReserve, fix)
}

// warnFileLimit logs fileLimitProblem, if any.
func warnFileLimit(maxConns int, logger *slog.Logger) {
	if p := fileLimitProblem(maxConns); p != "" {
		logger.Warn("connection limit above the file limit", "problem", p)
	}
}
