//go:build !linux && !darwin && !freebsd

package storage

// statfsFree is nil where free space is not measured: Commit then relies
// on Badger's own errors.
var statfsFree func(dir string) (uint64, error)
