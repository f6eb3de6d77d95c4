package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"

	"github.com/dgraph-io/badger/v4"

	"possync/appliance"
)

// Commit writes the batch in one Badger transaction (shared with the
// commits that arrive while another is being written, see group.go) and
// returns once it is synced. An empty batch is a no-op. A batch too large for one
// transaction is refused whole, as are writes to a closed store, a full
// disk (less than the reserve free, see space.go) or a read-only file
// system: those errors are *appliance.Error with code EUNAVAILABLE, and
// nothing of the batch is applied.
//
// If the batch holds notifications, the same transaction raises the
// last_bus_id key to the highest of them. Concurrent commits are written
// together as one transaction, one at a time (group.go), so the key's
// newest version is the maximum and the group shares its syncs; a failed
// group fails each of its commits. LastBusID never goes down.
func (db *DB) Commit(ctx context.Context, b *appliance.Batch) error {
	if err := db.use("commit"); err != nil {
		return commitError(err, b)
	}
	defer db.closeMu.RUnlock()
	if b == nil || b.Empty() {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if err := db.checkSpace(); err != nil {
		return commitError(err, b)
	}

	return db.commitGrouped(b)
}

// setBatch adds every record of b to txn.
func setBatch(txn *badger.Txn, b *appliance.Batch) error {
	for i := range b.Sessions {
		r := &b.Sessions[i]
		if err := txn.Set(sessionKey(r.Key), encodeSession(r)); err != nil {
			return err
		}
	}
	for i := range b.POS {
		r := &b.POS[i]
		if err := txn.Set(posKey(r.Key), encodePOS(r)); err != nil {
			return err
		}
	}
	for i := range b.Orders {
		r := &b.Orders[i]
		if err := txn.Set(orderKey(r.Key), encodeOrder(r)); err != nil {
			return err
		}
	}
	for i := range b.Broadcasts {
		r := &b.Broadcasts[i]
		if err := txn.Set(broadcastKey(r.FirstID), encodeBroadcast(r)); err != nil {
			return err
		}
	}
	return nil
}

// batchLastBus returns the highest notification id of b (or its
// BusIDFloor, if higher), and false if b has neither. Broadcasts without
// targets hold no notification.
func batchLastBus(b *appliance.Batch) (uint64, bool) {
	last := b.BusIDFloor
	ok := last > 0
	for i := range b.Broadcasts {
		if len(b.Broadcasts[i].Targets) > 0 {
			last = max(last, b.Broadcasts[i].LastID())
			ok = true
		}
	}
	return last, ok
}

// commitError returns nil for nil, an EUNAVAILABLE *appliance.Error when
// the store cannot take the write, and err with context otherwise.
func commitError(err error, b *appliance.Batch) error {
	if err == nil {
		return nil
	}
	if reason := unavailable(err, b); reason != "" {
		return &appliance.Error{
			Code:    appliance.EUNAVAILABLE,
			Message: "store cannot take the write: " + reason,
			Err:     err,
		}
	}
	return fmt.Errorf("commit: %w", err)
}

// unavailable says why the store cannot take a write, or "" if err is
// something else.
func unavailable(err error, b *appliance.Batch) string {
	switch {
	case errors.Is(err, appliance.ErrClosed),
		errors.Is(err, badger.ErrDBClosed),
		errors.Is(err, badger.ErrBlockedWrites):
		return "store is closed"
	case errors.Is(err, badger.ErrTxnTooBig):
		n := len(b.Sessions) + len(b.POS) + len(b.Orders) + len(b.Broadcasts)
		return fmt.Sprintf("batch of %d records is too large for one transaction", n)
	case isErrno(err, syscall.ENOSPC), isErrno(err, syscall.EDQUOT):
		return "disk is full"
	case isErrno(err, syscall.EROFS):
		return "file system is read-only"
	}
	return ""
}

// isErrno reports whether err is errno. Badger flattens some wrapped
// errors to text (y.Wrap formats with %+v), so the errno's message in the
// text counts too.
func isErrno(err error, errno syscall.Errno) bool {
	return errors.Is(err, errno) || strings.Contains(err.Error(), errno.Error())
}

// Purge deletes the broadcasts whose notifications are all below
// p.BroadcastsBefore and the orders p names (absent ones are ignored). It
// is not atomic: a failure may leave part of it done, and retrying is
// safe. It does not change LastBusID.
func (db *DB) Purge(ctx context.Context, p appliance.Purge) error {
	if err := db.use("purge"); err != nil {
		return err
	}
	defer db.closeMu.RUnlock()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("purge: %w", err)
	}
	keys, err := db.oldBroadcasts(ctx, p.BroadcastsBefore)
	if err != nil {
		return fmt.Errorf("purge: %w", err)
	}
	nb := len(keys)
	for _, k := range p.Orders {
		keys = append(keys, orderKey(k))
	}
	if len(keys) == 0 {
		return nil
	}
	wb := db.bdb.NewWriteBatch()
	defer wb.Cancel()
	for _, k := range keys {
		if err := wb.Delete(k); err != nil {
			return fmt.Errorf("purge: %w", err)
		}
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("purge: %w", err)
	}
	db.logger.Debug("purged", "broadcasts", nb, "orders", len(p.Orders))
	return nil
}

// oldBroadcasts returns the keys of the broadcasts whose last id is below
// before. Broadcasts do not overlap, so the scan stops at the first one
// that starts at or after before.
func (db *DB) oldBroadcasts(ctx context.Context, before uint64) ([][]byte, error) {
	var keys [][]byte
	err := db.bdb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{
			Prefix:         []byte{kindBroadcast},
			PrefetchValues: true,
			PrefetchSize:   64,
		})
		defer it.Close()
		n := 0
		for it.Rewind(); it.Valid(); it.Next() {
			if n++; n%256 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			item := it.Item()
			first, err := parseBroadcastKey(item.Key())
			if err != nil {
				return err
			}
			if first >= before {
				break
			}
			var bc appliance.Broadcast
			if err := item.Value(func(v []byte) error { return decodeBroadcast(v, &bc) }); err != nil {
				return fmt.Errorf("broadcast %d: %w", first, err)
			}
			if n := uint64(len(bc.Targets)); n == 0 || first+n-1 < before {
				keys = append(keys, item.KeyCopy(nil))
			}
		}
		return nil
	})
	return keys, err
}
