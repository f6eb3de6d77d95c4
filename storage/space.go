package storage

import (
	"fmt"
	"os"
	"syscall"
)

// minFreeBytes is the free space Commit keeps in reserve on the store's
// file system. Badger writes through mmapped sparse files (value log,
// write-ahead log, new SSTs), and a write into a hole when the disk is
// full does not fail with ENOSPC: the kernel raises SIGBUS and the process
// dies mid-write. Commit refuses instead while less than this is free.
// The reserve covers the unwritten rest of a 64 MiB value-log file, the
// WAL of two 8 MiB memtables at twice their size, and the SSTs a flush or
// small compaction writes before it deletes the old ones.
const minFreeBytes = 128 << 20

// checkSpace returns an error wrapping syscall.ENOSPC if the store's file
// system has less than minFreeBytes free. If the free space cannot be
// measured, it lets the write through.
func (db *DB) checkSpace() error {
	if db.freeBytes == nil {
		return nil
	}
	free, err := db.freeBytes(db.dir)
	if err != nil || free >= minFreeBytes {
		return nil
	}
	return fmt.Errorf("%d MiB free in %s, %d MiB kept in reserve: %w",
		free>>20, db.dir, minFreeBytes>>20, syscall.ENOSPC)
}

// dirBytes returns the disk space taken by the regular files directly in
// dir (Badger keeps all its files there), or 0 when it cannot be read.
func dirBytes(dir string) uint64 {
	if dir == "" {
		return 0
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var n uint64
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if info, err := e.Info(); err == nil {
			n += allocated(info)
		}
	}
	return n
}
