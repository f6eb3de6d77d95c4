package storage

import (
	"encoding/binary"
	"errors"
	"sync"

	"github.com/dgraph-io/badger/v4"

	"possync/appliance"
)

// Group commit. Badger with SyncWrites syncs the value log once per write
// batch but the memtable's WAL once per transaction in it (db.go
// writeRequests → writeToLSM → SyncWAL), so k concurrent commits cost
// k+1 device flushes. Commit instead writes one transaction at a time: a
// commit that arrives while another is being written queues, and the
// first of the queue then writes everything queued meanwhile as one
// transaction, hence one value-log write and two flushes for the group.
// A lone commit writes at once in its own goroutine, with no hand-off.
// Every caller still returns only once its batch is durable.

// committer is the queue of commits waiting for the one being written.
type committer struct {
	mu    sync.Mutex
	busy  bool            // a group is being written
	queue []*queuedCommit // waiting, arrival order; queue[0] leads the next group
	stats groupStats      // guarded by mu
}

type queuedCommit struct {
	b    *appliance.Batch
	done chan error // 1-buffered: the result, or errLead
}

// groupStats counts what the committer wrote since Open (Stats shows it).
type groupStats struct {
	groups  uint64 // transactions committed (a group or a lone commit)
	batches uint64 // batches made durable in them
}

// errLead tells a queued commit that it leads the next group.
var errLead = errors.New("storage: lead the next group")

// commitGrouped writes b, alone or with the commits queued behind the one
// in flight, and returns once it is durable (or failed).
func (db *DB) commitGrouped(b *appliance.Batch) error {
	c := &db.commits
	c.mu.Lock()
	if !c.busy {
		c.busy = true
		c.mu.Unlock()
		err := db.writeGroup([]*appliance.Batch{b})[0]
		db.handOff()
		return err
	}
	q := &queuedCommit{b: b, done: make(chan error, 1)}
	c.queue = append(c.queue, q)
	c.mu.Unlock()
	if err := <-q.done; err != errLead {
		return err
	}
	// q is queue[0]: write everything queued until now as one group.
	c.mu.Lock()
	group := c.queue
	c.queue = nil
	c.mu.Unlock()
	batches := make([]*appliance.Batch, len(group))
	for i, g := range group {
		batches[i] = g.b
	}
	errs := db.writeGroup(batches)
	for i := 1; i < len(group); i++ {
		group[i].done <- errs[i]
	}
	db.handOff()
	return errs[0]
}

// handOff ends the writer's turn: the first queued commit, if any, leads
// the next group; otherwise the committer is idle.
func (db *DB) handOff() {
	c := &db.commits
	c.mu.Lock()
	if len(c.queue) == 0 {
		c.busy = false
		c.mu.Unlock()
		return
	}
	first := c.queue[0]
	c.mu.Unlock()
	first.done <- errLead
}

// writeGroup commits the batches in one transaction and returns each its
// error (the same for all, wrapped per batch by commitError). A group too
// large for one transaction is written batch by batch instead, so one
// batch too large is refused alone.
func (db *DB) writeGroup(bs []*appliance.Batch) []error {
	errs := make([]error, len(bs))
	err := db.writeTxn(bs)
	if err != nil && len(bs) > 1 && errors.Is(err, badger.ErrTxnTooBig) {
		for i, b := range bs {
			errs[i] = commitError(db.writeTxn([]*appliance.Batch{b}), b)
		}
		return errs
	}
	for i, b := range bs {
		errs[i] = commitError(err, b)
	}
	return errs
}

// writeTxn writes the batches in one Badger transaction, raising the
// last_bus_id key to the highest notification id among them, and returns
// once it is synced. Only one writeTxn runs at a time (the committer), so
// the key's newest version is always the maximum, and lastBus needs no
// lock of its own.
func (db *DB) writeTxn(bs []*appliance.Batch) error {
	txn := db.bdb.NewTransaction(true)
	defer txn.Discard()
	var bus uint64
	var hasBus bool
	for _, b := range bs {
		if err := setBatch(txn, b); err != nil {
			return err
		}
		if last, ok := batchLastBus(b); ok {
			bus, hasBus = max(bus, last), true
		}
	}
	if hasBus {
		bus = max(bus, db.lastBus)
		if err := txn.Set(keyLastBusID, binary.BigEndian.AppendUint64(nil, bus)); err != nil {
			return err
		}
	}
	if err := txn.Commit(); err != nil {
		return err
	}
	if hasBus {
		db.lastBus = bus
	}
	db.commits.mu.Lock()
	db.commits.stats.groups++
	db.commits.stats.batches += uint64(len(bs))
	db.commits.mu.Unlock()
	return nil
}
