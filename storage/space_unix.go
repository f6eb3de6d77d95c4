//go:build linux || darwin || freebsd

package storage

import (
	"io/fs"
	"syscall"
)

// statfsFree returns the bytes available to unprivileged users on the
// file system holding dir.
func statfsFree(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return uint64(st.Bavail) * uint64(st.Bsize), nil
}

// stRdonly is the read-only mount flag in Statfs_t.Flags: ST_RDONLY on
// Linux, MNT_RDONLY on the BSDs; 1 on all of them.
const stRdonly = 1

// statfsInfo measures the file system holding dir.
func statfsInfo(dir string) (fsInfo, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return fsInfo{}, err
	}
	return fsInfo{
		free:     uint64(st.Bavail) * uint64(st.Bsize),
		total:    uint64(st.Blocks) * uint64(st.Bsize),
		readOnly: uint64(st.Flags)&stRdonly != 0,
	}, nil
}

// statfsUsage returns the bytes available to unprivileged users and the
// size of the file system holding dir.
func statfsUsage(dir string) (free, total uint64, err error) {
	fi, err := statfsInfo(dir)
	return fi.free, fi.total, err
}

// allocated returns the disk space a file takes: Badger's mmapped files are
// sparse, so their length overstates it.
func allocated(info fs.FileInfo) uint64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Blocks) * 512
	}
	return uint64(max(info.Size(), 0))
}
