package storage

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"possync/appliance"
)

// groupBatch is one order update of session 1: n orders of msgSize bytes
// and, when first > 0, a broadcast of 2 notifications from first.
func groupBatch(uid string, n int, msgSize int, first uint64) *appliance.Batch {
	b := &appliance.Batch{}
	for i := range n {
		key := appliance.OrderKey{Session: appliance.SessionKey{DB: "odoo", ID: 1}, UID: fmt.Sprintf("%s-%d", uid, i)}
		msg := fmt.Appendf(nil, `{"uid":%q,"pad":"%s"}`, key.UID, strings.Repeat("x", msgSize))
		b.Orders = append(b.Orders, appliance.OrderRecord{Key: key, Revision: 1, Nonce: `"n"`,
			State: appliance.StateDraft, Run: 1, Updated: time.Now(), Message: msg})
	}
	if first > 0 {
		b.Broadcasts = []appliance.Broadcast{{FirstID: first, At: time.Now(), Templated: true,
			Prefix: []byte(`{"action":"update_order","message_ID":`), Suffix: []byte(`}`),
			Targets: []appliance.Target{{Channel: `["odoo","pos.multi_session",1]`, MessageID: 1},
				{Channel: `["odoo","pos.multi_session",2]`, MessageID: 1}}}}
	}
	return b
}

// commitQueued holds the committer busy (as while a group is written),
// starts one Commit per batch, waits until all are queued, then lets the
// first of the queue lead. It returns each Commit's error.
func commitQueued(t *testing.T, db *DB, batches []*appliance.Batch) []error {
	t.Helper()
	db.commits.mu.Lock()
	db.commits.busy = true
	db.commits.mu.Unlock()
	errs := make([]error, len(batches))
	var wg sync.WaitGroup
	for i, b := range batches {
		wg.Go(func() { errs[i] = db.Commit(context.Background(), b) })
		// Queue in order, so the group's order is known.
		waitFor(t, func() bool {
			db.commits.mu.Lock()
			defer db.commits.mu.Unlock()
			return len(db.commits.queue) == i+1
		})
	}
	db.handOff()
	wg.Wait()
	return errs
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting")
		}
	}
}

func openGroupStore(t *testing.T, dir string) *DB {
	t.Helper()
	db, err := Open(dir, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("Open(%s) = %v", dir, err)
	}
	return db
}

// TestCommitGroup: commits queued behind one in flight are written as one
// transaction; each returns nil only when its batch is on disk, and
// last_bus_id is the highest id of the group whatever the arrival order.
func TestCommitGroup(t *testing.T) {
	dir := t.TempDir()
	db := openGroupStore(t, dir)
	firsts := []uint64{7, 3, 11, 1, 9, 5}
	var batches []*appliance.Batch
	for i, f := range firsts {
		batches = append(batches, groupBatch(fmt.Sprint("o", i), 1, 3000, f))
	}
	stats := func() Stats {
		t.Helper()
		st, err := db.Stats()
		if err != nil {
			t.Fatalf("Stats() = %v", err)
		}
		return st
	}
	before := stats()
	for i, err := range commitQueued(t, db, batches) {
		if err != nil {
			t.Fatalf("Commit(batch %d) = %v", i, err)
		}
	}
	// One more transaction, six more commits: all six in that one.
	got := stats()
	if got.Transactions != before.Transactions+1 || got.Commits != before.Commits+6 {
		t.Fatalf("after 6 queued commits: Transactions %d → %d, Commits %d → %d; want one more transaction holding all 6",
			before.Transactions, got.Transactions, before.Commits, got.Commits)
	}
	// A lone commit after the group is written at once, by itself.
	if err := db.Commit(context.Background(), groupBatch("lone", 1, 10, 0)); err != nil {
		t.Fatalf("Commit(lone) = %v", err)
	}
	if s := stats(); s.Transactions != got.Transactions+1 || s.Commits != got.Commits+1 || db.commits.busy {
		t.Fatalf("after a lone commit: Transactions %d, Commits %d, busy %v; want one more of each and an idle committer", s.Transactions, s.Commits, db.commits.busy)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openGroupStore(t, dir)
	defer db.Close()
	snap, err := db.Load(context.Background())
	if err != nil {
		t.Fatalf("Load() = %v", err)
	}
	if len(snap.Orders) != 7 || len(snap.Broadcasts) != 6 || snap.LastBusID != 12 {
		t.Fatalf("after reopening: %d orders, %d broadcasts, last_bus_id %d; want 7, 6, 12", len(snap.Orders), len(snap.Broadcasts), snap.LastBusID)
	}
}

// TestCommitGroupTooLarge: a group too large for one transaction is
// written batch by batch, so only the one batch too large by itself is
// refused, with its own record count, and the others land.
func TestCommitGroupTooLarge(t *testing.T) {
	db := openGroupStore(t, t.TempDir())
	defer db.Close()
	// 600 orders of 850 bytes stay inline (under the value threshold):
	// about 0.55 MB each, so two fit no transaction (1.2 MiB) together.
	batches := []*appliance.Batch{
		groupBatch("a", 600, 850, 1),
		groupBatch("big", 2000, 850, 3),
		groupBatch("b", 600, 850, 5),
		groupBatch("c", 1, 10, 7),
	}
	errs := commitQueued(t, db, batches)
	for i, err := range errs {
		if i == 1 {
			if appliance.ErrorCode(err) != appliance.EUNAVAILABLE || !strings.Contains(err.Error(), "batch of 2001 records is too large") {
				t.Fatalf("Commit(2000 orders) = %v, want EUNAVAILABLE: batch of 2001 records is too large", err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("Commit(batch %d) = %v, want nil", i, err)
		}
	}
	snap, err := db.Load(context.Background())
	if err != nil {
		t.Fatalf("Load() = %v", err)
	}
	if len(snap.Orders) != 1201 || snap.LastBusID != 8 {
		t.Fatalf("after the group: %d orders, last_bus_id %d; want 1201 and 8", len(snap.Orders), snap.LastBusID)
	}
}
