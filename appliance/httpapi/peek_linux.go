package httpapi

import "syscall"

// peerGone reports whether the client of a parked poll has closed or reset
// its connection. It peeks without blocking and consumes nothing: no data
// (EAGAIN) means the client is waiting; data means it is alive (it sent
// its next request early); end of stream or an error means it left. A
// client that half-closes its sending side while it waits for the answer
// is taken as gone: browsers and curl never do that.
func peerGone(raw syscall.RawConn) bool {
	gone := false
	var buf [1]byte
	err := raw.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case err == syscall.EAGAIN || err == syscall.EINTR:
		case err != nil, n == 0:
			gone = true
		}
		return true // never wait for readability
	})
	return gone || err != nil
}
