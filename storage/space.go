package storage

import (
	"fmt"
	"os"
	"syscall"
)

// Commit keeps a free-space reserve on the store's file system. Badger
// writes through mmapped sparse files (value log, write-ahead log, new
// SSTs), and a write into a hole when the disk is full does not fail with
// ENOSPC: the kernel raises SIGBUS and the process dies mid-write. Commit
// refuses instead while less than the reserve is free, so Badger's own
// flushes and compactions (which cannot be refused) find room.
//
// The reserve scales with the file system: an eighth of it, at least
// minReserveBytes and at most maxReserveBytes. On a card of 1 GiB or more
// that is 128 MiB: the unwritten rest of a 64 MiB value-log file, the WAL
// of two 8 MiB memtables at twice their size, and the SSTs a flush or
// small compaction writes before it deletes the old ones. On a small file
// system a fixed 128 MiB would exceed the whole of it and refuse every
// write on an empty disk; an eighth still leaves room for one memtable
// flush (at most 8 MiB before compression) and the largest transaction
// (1.2 MiB) past the check.
const (
	minReserveBytes = 4 << 20
	maxReserveBytes = 128 << 20
)

// autoReserve returns the reserve for a file system of total bytes.
func autoReserve(total uint64) uint64 {
	return min(max(total/8, minReserveBytes), maxReserveBytes)
}

// chooseReserve returns the reserve for a file system of total bytes
// (0 = not measured) given the configured one (0 = automatic), and a
// warning when the configured one had to be lowered. A reserve is never
// more than half the file system, so an empty store always takes writes.
func chooseReserve(configured, total uint64) (uint64, string) {
	if configured == 0 {
		if total == 0 {
			return maxReserveBytes, ""
		}
		return min(autoReserve(total), total/2), ""
	}
	if total > 0 && configured > total/2 {
		return total / 2, fmt.Sprintf("storage.reserve_mib %d exceeds half the data file system (%s); using %s",
			configured>>20, mib(total), mib(total/2))
	}
	return configured, ""
}

// checkSpace returns an error wrapping syscall.ENOSPC if the store's file
// system has less than the reserve free. If the free space cannot be
// measured, it lets the write through.
func (db *DB) checkSpace() error {
	if db.freeBytes == nil {
		return nil
	}
	free, err := db.freeBytes(db.dir)
	if err != nil || free >= db.reserve {
		return nil
	}
	return fmt.Errorf("%d MiB free in %s, %d MiB kept in reserve: %w",
		free>>20, db.dir, db.reserve>>20, syscall.ENOSPC)
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
