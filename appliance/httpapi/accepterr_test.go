package httpapi

import (
	"net"
	"os"
	"syscall"
	"testing"
)

// The accept errors of issue 13: a process or system short of descriptors
// or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM on a 1 GB Pi) and a connection
// that failed before it was accepted are retried; a broken listening socket
// is not. Errors are wrapped as net.Listener.Accept returns them.
func TestTemporaryAcceptError(t *testing.T) {
	wrap := func(errno syscall.Errno) error {
		return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", errno)}
	}
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
		syscall.ECONNABORTED, syscall.EPROTO, syscall.EINTR} {
		if !temporaryAcceptError(wrap(errno)) {
			t.Errorf("temporaryAcceptError(%v) = false, want true (retried)", errno)
		}
	}
	for _, errno := range []syscall.Errno{syscall.EINVAL, syscall.EBADF, syscall.ENOTSOCK} {
		if temporaryAcceptError(wrap(errno)) {
			t.Errorf("temporaryAcceptError(%v) = true, want false (the socket is broken for good)", errno)
		}
	}
	if temporaryAcceptError(net.ErrClosed) {
		t.Error("temporaryAcceptError(net.ErrClosed) = true, want false")
	}
}
