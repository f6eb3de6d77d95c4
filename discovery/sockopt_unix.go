//go:build darwin || freebsd || netbsd || openbsd || dragonfly || (linux && !mips && !mipsle && !mips64 && !mips64le)

package discovery

import "syscall"

// reusePort sets SO_REUSEADDR and SO_REUSEPORT before bind, so possync's
// sockets share UDP 5353 with zeroconf's and with avahi-daemon's.
func reusePort(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		if err := syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
			serr = err
			return
		}
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, soReusePort, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
