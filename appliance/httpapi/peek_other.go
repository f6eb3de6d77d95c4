//go:build !linux

package httpapi

import "syscall"

// peerGone is not implemented here: parked polls end with their hold.
func peerGone(syscall.RawConn) bool { return false }
