package storage

import (
	"fmt"

	"possync/appliance"
)

var _ appliance.HealthReporter = (*DB)(nil)

// Health reports whether Commit would refuse writes because of the file
// system: an EUNAVAILABLE *appliance.Error when it is mounted read-only or
// has less than the free-space reserve (space.go) left; nil otherwise, or
// when the file system cannot be measured.
func (db *DB) Health() error {
	if err := db.use("health"); err != nil {
		return &appliance.Error{Code: appliance.EUNAVAILABLE, Message: "store is closed", Err: err}
	}
	defer db.closeMu.RUnlock()
	if db.fsInfo == nil {
		return nil
	}
	fs, err := db.fsInfo(db.dir)
	if err != nil {
		return nil
	}
	switch {
	case fs.readOnly:
		return appliance.Errorf(appliance.EUNAVAILABLE, "data file system is read-only (%s)", db.dir)
	case fs.free < db.reserve:
		return appliance.Errorf(appliance.EUNAVAILABLE, "data file system full (%s free of %s in %s, %s kept in reserve)",
			mib(fs.free), mib(fs.total), db.dir, mib(db.reserve))
	}
	return nil
}

// fsInfo is what Health needs to know about a file system.
type fsInfo struct {
	free, total uint64 // bytes available to unprivileged users, size
	readOnly    bool
}

func mib(b uint64) string { return fmt.Sprintf("%d MiB", b>>20) }
