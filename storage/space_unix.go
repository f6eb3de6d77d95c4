//go:build linux || darwin || freebsd

package storage

import (
	"io/fs"
	"path/filepath"
	"syscall"

	"github.com/dgraph-io/badger/v4"
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

// statfsInfo measures the file system holding dir for Health, including
// whether it refuses writes (refusesWrites).
func statfsInfo(dir string) (fsInfo, error) {
	fi, err := statfsMeasure(dir)
	if err == nil && !fi.readOnly {
		fi.readOnly = refusesWrites(dir)
	}
	return fi, err
}

// statfsMeasure is statfs(2) of dir's file system: free and total bytes
// and the mount's read-only flag, without touching any file.
func statfsMeasure(dir string) (fsInfo, error) {
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

// refusesWrites reports whether the file system holding the store in dir
// refuses to open its MANIFEST for writing with EROFS. ext4 mounted
// errors=remount-ro (Debian's and Raspberry Pi OS's default) turns read-only
// after a card error; newer kernels do it as "emergency_ro", which leaves
// the mount's rw flag set, so statfs and access(W_OK) still say writable
// while every open for writing fails. Opening changes nothing on the disk:
// nothing is written or truncated. A missing MANIFEST (not a store) or any
// other error says nothing.
func refusesWrites(dir string) bool {
	fd, err := syscall.Open(filepath.Join(dir, badger.ManifestFilename), syscall.O_WRONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return err == syscall.EROFS
	}
	_ = syscall.Close(fd)
	return false
}

// statfsUsage returns the bytes available to unprivileged users and the
// size of the file system holding dir.
func statfsUsage(dir string) (free, total uint64, err error) {
	fi, err := statfsMeasure(dir) // sizes only: no open of the MANIFEST per scrape
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
