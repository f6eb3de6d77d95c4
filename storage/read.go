package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"possync/appliance"
)

// Load reads the whole store in one consistent snapshot. Records come in
// key order: broadcasts ascending by FirstID.
func (db *DB) Load(ctx context.Context) (*appliance.Snapshot, error) {
	if err := db.use("load"); err != nil {
		return nil, err
	}
	defer db.closeMu.RUnlock()
	s := &appliance.Snapshot{}
	err := db.bdb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.DefaultIteratorOptions)
		defer it.Close()
		n := 0
		for it.Rewind(); it.Valid(); it.Next() {
			if n++; n%256 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if err := loadItem(s, it.Item()); err != nil {
				return fmt.Errorf("key %x: %w", it.Item().Key(), err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load store %s: %w", db.dir, err)
	}
	for i := range s.Broadcasts {
		if len(s.Broadcasts[i].Targets) > 0 {
			s.LastBusID = max(s.LastBusID, s.Broadcasts[i].LastID())
		}
	}
	return s, nil
}

// loadItem decodes one record into s.
func loadItem(s *appliance.Snapshot, item *badger.Item) error {
	key := item.Key()
	if len(key) == 0 {
		return errBadKey
	}
	switch key[0] {
	case kindMeta:
		if !bytes.Equal(key, keyLastBusID) {
			return nil
		}
		return item.Value(func(v []byte) error {
			id, err := decodeLastBus(v)
			s.LastBusID = max(s.LastBusID, id)
			return err
		})
	case kindSession:
		r := appliance.SessionRecord{}
		k, err := parseSessionKey(key)
		if err != nil {
			return err
		}
		r.Key = k
		if err := item.Value(func(v []byte) error { return decodeSession(v, &r) }); err != nil {
			return err
		}
		s.Sessions = append(s.Sessions, r)
	case kindPOS:
		r := appliance.POSRecord{}
		k, err := parsePOSKey(key)
		if err != nil {
			return err
		}
		r.Key = k
		if err := item.Value(func(v []byte) error { return decodePOS(v, &r) }); err != nil {
			return err
		}
		s.POS = append(s.POS, r)
	case kindOrder:
		r, err := readOrder(item)
		if err != nil {
			return err
		}
		s.Orders = append(s.Orders, r)
	case kindBroadcast:
		r := appliance.Broadcast{}
		first, err := parseBroadcastKey(key)
		if err != nil {
			return err
		}
		r.FirstID = first
		v, err := item.ValueCopy(nil) // Prefix and Suffix alias it
		if err != nil {
			return err
		}
		if err := decodeBroadcast(v, &r); err != nil {
			return err
		}
		s.Broadcasts = append(s.Broadcasts, r)
	default:
		return fmt.Errorf("unknown record kind %#x", key[0])
	}
	return nil
}

// readOrder decodes the order at item. Its Message aliases a fresh copy
// of the value.
func readOrder(item *badger.Item) (appliance.OrderRecord, error) {
	var r appliance.OrderRecord
	k, err := parseOrderKey(item.Key())
	if err != nil {
		return r, err
	}
	r.Key = k
	v, err := item.ValueCopy(nil)
	if err != nil {
		return r, err
	}
	err = decodeOrder(v, &r)
	return r, err
}

// Order reads one order. It returns an error wrapping appliance.ErrNotFound
// if there is none.
func (db *DB) Order(ctx context.Context, k appliance.OrderKey) (appliance.OrderRecord, error) {
	if err := db.use("order"); err != nil {
		return appliance.OrderRecord{}, err
	}
	defer db.closeMu.RUnlock()
	if err := ctx.Err(); err != nil {
		return appliance.OrderRecord{}, fmt.Errorf("order: %w", err)
	}
	var r appliance.OrderRecord
	err := db.bdb.View(func(txn *badger.Txn) error {
		item, err := txn.Get(orderKey(k))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return appliance.ErrNotFound
		}
		if err != nil {
			return err
		}
		r, err = readOrder(item)
		return err
	})
	if err != nil {
		return appliance.OrderRecord{}, fmt.Errorf("order %q/%d/%q: %w", k.Session.DB, k.Session.ID, k.UID, err)
	}
	return r, nil
}
