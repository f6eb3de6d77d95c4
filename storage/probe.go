package storage

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"possync/appliance"
)

var _ appliance.WriteProber = (*DB)(nil)

// keyHealthProbe holds the time of the last ProbeWrite. Load skips meta
// keys it does not know, so older releases read a store that has it.
var keyHealthProbe = []byte{kindMeta, 'h', 'e', 'a', 'l', 't', 'h', '_', 'p', 'r', 'o', 'b', 'e'}

// ProbeWrite commits the current time under a meta key with the checks
// and the sync of Commit: nil means a write reached the disk.
func (db *DB) ProbeWrite(ctx context.Context) error {
	if err := db.use("probe write"); err != nil {
		return err
	}
	defer db.closeMu.RUnlock()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("probe write: %w", err)
	}
	if err := db.checkSpace(); err != nil {
		return commitError(err, &appliance.Batch{})
	}
	txn := db.bdb.NewTransaction(true)
	defer txn.Discard()
	if err := txn.Set(keyHealthProbe, binary.BigEndian.AppendUint64(nil, uint64(time.Now().UnixNano()))); err != nil {
		return fmt.Errorf("probe write: %w", err)
	}
	if err := txn.Commit(); err != nil {
		return commitError(err, &appliance.Batch{})
	}
	return nil
}
