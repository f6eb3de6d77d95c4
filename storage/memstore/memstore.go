// Package memstore is an in-memory appliance.Store for tests and
// development: maps behind a mutex, with the semantics of the Badger store
// in package storage (both pass storage/storagetest). Nothing survives the
// process.
package memstore

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"

	"possync/appliance"
)

var _ appliance.Store = (*Store)(nil)

// Store is an in-memory appliance.Store. Records are copied in and out, so
// callers may reuse or modify the slices they pass and receive. Its methods
// are safe for concurrent use.
type Store struct {
	// mu guards the fields that follow.
	mu         sync.Mutex
	closed     bool
	sessions   map[appliance.SessionKey]appliance.SessionRecord
	pos        map[appliance.POSKey]appliance.POSRecord
	orders     map[appliance.OrderKey]appliance.OrderRecord
	broadcasts map[uint64]appliance.Broadcast
	lastBus    uint64
}

// New returns an empty open Store.
func New() *Store {
	return &Store{
		sessions:   make(map[appliance.SessionKey]appliance.SessionRecord),
		pos:        make(map[appliance.POSKey]appliance.POSRecord),
		orders:     make(map[appliance.OrderKey]appliance.OrderRecord),
		broadcasts: make(map[uint64]appliance.Broadcast),
	}
}

// lock takes mu and reports ErrClosed if the store is closed. On success
// the caller must unlock mu.
func (s *Store) lock(op string) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("%s: memstore: %w", op, appliance.ErrClosed)
	}
	return nil
}

// Load returns a copy of everything. Sessions, POS and orders are sorted
// by key; broadcasts ascending by FirstID.
func (s *Store) Load(ctx context.Context) (*appliance.Snapshot, error) {
	if err := s.lock("load"); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	snap := &appliance.Snapshot{LastBusID: s.lastBus}
	for _, r := range s.sessions {
		snap.Sessions = append(snap.Sessions, r)
	}
	for _, r := range s.pos {
		snap.POS = append(snap.POS, r)
	}
	for _, r := range s.orders {
		snap.Orders = append(snap.Orders, cloneOrder(r))
	}
	for _, b := range s.broadcasts {
		snap.Broadcasts = append(snap.Broadcasts, cloneBroadcast(b))
	}
	slices.SortFunc(snap.Sessions, func(a, b appliance.SessionRecord) int { return compareSession(a.Key, b.Key) })
	slices.SortFunc(snap.POS, func(a, b appliance.POSRecord) int {
		return cmp.Or(cmp.Compare(a.Key.DB, b.Key.DB), cmp.Compare(a.Key.ID, b.Key.ID))
	})
	slices.SortFunc(snap.Orders, func(a, b appliance.OrderRecord) int {
		return cmp.Or(compareSession(a.Key.Session, b.Key.Session), cmp.Compare(a.Key.UID, b.Key.UID))
	})
	slices.SortFunc(snap.Broadcasts, func(a, b appliance.Broadcast) int { return cmp.Compare(a.FirstID, b.FirstID) })
	return snap, nil
}

func compareSession(a, b appliance.SessionKey) int {
	return cmp.Or(cmp.Compare(a.DB, b.DB), cmp.Compare(a.ID, b.ID))
}

// Commit applies the batch atomically and raises LastBusID to the highest
// notification id in it (or its BusIDFloor). Later records in the batch overwrite earlier ones
// with the same key. After Close it returns an EUNAVAILABLE
// *appliance.Error wrapping appliance.ErrClosed.
func (s *Store) Commit(ctx context.Context, b *appliance.Batch) error {
	if err := s.lock("commit"); err != nil {
		return &appliance.Error{Code: appliance.EUNAVAILABLE, Message: "store cannot take the write: store is closed", Err: err}
	}
	defer s.mu.Unlock()
	if b == nil || b.Empty() {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	for _, r := range b.Sessions {
		s.sessions[r.Key] = r
	}
	for _, r := range b.POS {
		s.pos[r.Key] = r
	}
	for _, r := range b.Orders {
		s.orders[r.Key] = cloneOrder(r)
	}
	for _, r := range b.Broadcasts {
		s.broadcasts[r.FirstID] = cloneBroadcast(r)
		if len(r.Targets) > 0 {
			s.lastBus = max(s.lastBus, r.LastID())
		}
	}
	s.lastBus = max(s.lastBus, b.BusIDFloor)
	return nil
}

// Order returns a copy of one order, or an error wrapping
// appliance.ErrNotFound.
func (s *Store) Order(ctx context.Context, k appliance.OrderKey) (appliance.OrderRecord, error) {
	if err := s.lock("order"); err != nil {
		return appliance.OrderRecord{}, err
	}
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return appliance.OrderRecord{}, fmt.Errorf("order: %w", err)
	}
	r, ok := s.orders[k]
	if !ok {
		return appliance.OrderRecord{}, fmt.Errorf("order %q/%d/%q: %w", k.Session.DB, k.Session.ID, k.UID, appliance.ErrNotFound)
	}
	return cloneOrder(r), nil
}

// Purge deletes the broadcasts whose notifications are all below
// p.BroadcastsBefore and the orders p names. LastBusID is unchanged.
func (s *Store) Purge(ctx context.Context, p appliance.Purge) error {
	if err := s.lock("purge"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("purge: %w", err)
	}
	for id, b := range s.broadcasts {
		if n := uint64(len(b.Targets)); id < p.BroadcastsBefore && (n == 0 || id+n-1 < p.BroadcastsBefore) {
			delete(s.broadcasts, id)
		}
	}
	for _, k := range p.Orders {
		delete(s.orders, k)
	}
	return nil
}

// Close marks the store closed and drops its data. It is safe to call
// more than once.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.sessions, s.pos, s.orders, s.broadcasts = nil, nil, nil, nil
	return nil
}

func cloneOrder(r appliance.OrderRecord) appliance.OrderRecord {
	r.Message = bytes.Clone(r.Message)
	return r
}

func cloneBroadcast(b appliance.Broadcast) appliance.Broadcast {
	b.Prefix = bytes.Clone(b.Prefix)
	b.Suffix = bytes.Clone(b.Suffix)
	b.Targets = slices.Clone(b.Targets)
	return b
}

// ProbeWrite commits nothing (the store is memory) and reports whether
// the store is open.
func (s *Store) ProbeWrite(ctx context.Context) error {
	if err := s.lock("probe write"); err != nil {
		return err
	}
	s.mu.Unlock()
	return ctx.Err()
}
