//go:build !(darwin || freebsd || netbsd || openbsd || dragonfly || (linux && !mips && !mipsle && !mips64 && !mips64le))

package discovery

import "syscall"

// reusePort does nothing here: binding the multicast group address already
// makes Go set SO_REUSEADDR, which is all this platform offers.
func reusePort(network, address string, c syscall.RawConn) error { return nil }
