//go:build !linux && !darwin && !freebsd

package storage

// statfsFree is nil where free space is not measured: Commit then relies
// on Badger's own errors.
var statfsFree func(dir string) (uint64, error)

// statfsInfo is nil where file systems are not measured: Health then
// reports nothing.
var statfsInfo func(dir string) (fsInfo, error)
