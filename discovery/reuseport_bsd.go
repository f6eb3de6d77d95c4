//go:build darwin || freebsd || netbsd || openbsd || dragonfly

package discovery

import "syscall"

// soReusePort is SO_REUSEPORT.
const soReusePort = syscall.SO_REUSEPORT
