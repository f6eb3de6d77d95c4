//go:build !linux && !darwin && !freebsd

package storage

import (
	"errors"
	"io/fs"
)

// statfsFree is nil where free space is not measured: Commit then relies
// on Badger's own errors.
var statfsFree func(dir string) (uint64, error)

// statfsInfo is nil where file systems are not measured: Health then
// reports nothing.
var statfsInfo func(dir string) (fsInfo, error)

// statfsUsage is not measured here.
func statfsUsage(dir string) (free, total uint64, err error) {
	return 0, 0, errors.ErrUnsupported
}

// allocated returns the length of the file.
func allocated(info fs.FileInfo) uint64 { return uint64(max(info.Size(), 0)) }
