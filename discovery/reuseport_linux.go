//go:build linux && !mips && !mipsle && !mips64 && !mips64le

package discovery

// soReusePort is SO_REUSEPORT, which package syscall lacks on Linux.
const soReusePort = 0xf
