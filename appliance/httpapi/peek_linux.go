package httpapi

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// peerGone reports whether the client of a parked poll has closed or reset
// its connection. It peeks without blocking and consumes nothing: no data
// (EAGAIN) means the client is waiting; data means it is alive (it sent
// its next request early), unless the client has also closed its side
// (TCP CLOSE_WAIT): a TLS client that leaves sends a close_notify alert
// before its FIN, and under TLS 1.3 that alert looks like any data.
// End of stream or an error means it left. A
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
		default:
			info, ierr := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
			gone = ierr == nil && info.State == tcpCloseWait
		}
		return true // never wait for readability
	})
	return gone || err != nil
}

// tcpCloseWait is TCP_CLOSE_WAIT of linux/tcp_states.h: the peer sent FIN.
const tcpCloseWait = 8
