// Package storagetest is the conformance suite that every appliance.Store
// must pass: the Badger store in package storage runs RunPersistent, the
// in-memory storage/memstore runs Run.
//
// The suite is black-box: it uses only the Store interface, so a
// behaviour it checks is part of the contract, not an accident of one
// implementation.
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"possync/appliance"
)

// OpenFunc opens a Store whose data lives in dir (a fresh t.TempDir() per
// subtest). Stores that keep nothing on disk ignore dir. The suite closes
// every store it opens.
type OpenFunc func(t *testing.T, dir string) appliance.Store

// Run runs the suite against the stores open returns.
func Run(t *testing.T, open OpenFunc) {
	run(t, open, false)
}

// RunPersistent runs the suite and, in addition, closes and reopens the
// store from the same dir at the reopen steps and after each case, and
// checks that Load returns the same data and LastBusID: what was
// committed survives a restart.
func RunPersistent(t *testing.T, open OpenFunc) {
	run(t, open, true)
}

func run(t *testing.T, open OpenFunc, persistent bool) {
	for _, tt := range cases() {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, open, persistent)
			for i, st := range tt.steps {
				h.do(i, st)
			}
			h.check(&tt.want)
			if persistent {
				h.reopen()
				h.check(&tt.want)
			}
		})
	}
	t.Run("order not found", func(t *testing.T) { testOrderNotFound(t, newHarness(t, open, persistent)) })
	t.Run("concurrent commits", func(t *testing.T) { testConcurrent(t, newHarness(t, open, persistent)) })
	t.Run("no aliasing", func(t *testing.T) { testNoAliasing(t, newHarness(t, open, persistent)) })
	t.Run("close", func(t *testing.T) { testClose(t, newHarness(t, open, persistent)) })
}

// harness holds the store under test.
type harness struct {
	t          *testing.T
	open       OpenFunc
	dir        string
	persistent bool
	s          appliance.Store
}

func newHarness(t *testing.T, open OpenFunc, persistent bool) *harness {
	t.Helper()
	h := &harness{t: t, open: open, dir: t.TempDir(), persistent: persistent}
	h.s = open(t, h.dir)
	t.Cleanup(func() {
		if err := h.s.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
	})
	return h
}

// reopen closes the store and opens it again from the same dir.
func (h *harness) reopen() {
	h.t.Helper()
	if err := h.s.Close(); err != nil {
		h.t.Fatalf("Close() = %v", err)
	}
	h.s = h.open(h.t, h.dir)
}

// do runs step i.
func (h *harness) do(i int, st step) {
	h.t.Helper()
	ctx := context.Background()
	switch {
	case st.commit != nil:
		if err := h.s.Commit(ctx, st.commit); err != nil {
			h.t.Fatalf("step %d: Commit() = %v", i, err)
		}
	case st.purge != nil:
		if err := h.s.Purge(ctx, *st.purge); err != nil {
			h.t.Fatalf("step %d: Purge(%+v) = %v", i, *st.purge, err)
		}
	case st.reopen:
		if h.persistent {
			h.reopen()
		}
	}
}

// cmpOpts compares snapshots: nil equals empty, times to the millisecond,
// and sessions, POS and orders in any order. Broadcasts must come in
// order; check verifies that separately for a clearer message.
var cmpOpts = cmp.Options{
	// A Comparer, because cmp walks a []byte byte by byte by reflection
	// (seconds for a 256 KiB message); bytes.Equal treats nil as empty.
	cmp.Comparer(bytes.Equal),
	cmp.FilterPath(func(p cmp.Path) bool { return p.Last().Type() != reflect.TypeFor[[]byte]() }, cmpopts.EquateEmpty()),
	cmpopts.EquateApproxTime(time.Millisecond),
	cmpopts.SortSlices(func(a, b appliance.SessionRecord) bool { return lessSession(a.Key, b.Key) }),
	cmpopts.SortSlices(func(a, b appliance.POSRecord) bool {
		return a.Key.DB < b.Key.DB || a.Key.DB == b.Key.DB && a.Key.ID < b.Key.ID
	}),
	cmpopts.SortSlices(func(a, b appliance.OrderRecord) bool {
		if a.Key.Session != b.Key.Session {
			return lessSession(a.Key.Session, b.Key.Session)
		}
		return a.Key.UID < b.Key.UID
	}),
}

func lessSession(a, b appliance.SessionKey) bool {
	return a.DB < b.DB || a.DB == b.DB && a.ID < b.ID
}

// check loads the store and compares it with want, then reads every order
// of want with Order.
func (h *harness) check(want *appliance.Snapshot) {
	h.t.Helper()
	ctx := context.Background()
	got, err := h.s.Load(ctx)
	if err != nil {
		h.t.Fatalf("Load() = %v", err)
	}
	if !slices.IsSortedFunc(got.Broadcasts, func(a, b appliance.Broadcast) int {
		if a.FirstID < b.FirstID {
			return -1
		}
		return 1 // equal ids are a failure too
	}) {
		h.t.Errorf("Load() broadcasts not strictly ascending: %v", firstIDs(got.Broadcasts))
	}
	if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
		h.t.Errorf("Load() mismatch (-want +got):\n%s", diff)
	}
	for _, o := range want.Orders {
		got, err := h.s.Order(ctx, o.Key)
		if err != nil {
			h.t.Errorf("Order(%+v) = %v", o.Key, err)
			continue
		}
		if diff := cmp.Diff(o, got, cmpOpts); diff != "" {
			h.t.Errorf("Order(%+v) mismatch (-want +got):\n%s", o.Key, diff)
		}
	}
}

func firstIDs(bs []appliance.Broadcast) []uint64 {
	ids := make([]uint64, len(bs))
	for i := range bs {
		ids[i] = bs[i].FirstID
	}
	return ids
}

func testOrderNotFound(t *testing.T, h *harness) {
	ctx := context.Background()
	a := order("db", 1, "00001-001-0001", 1, `{"a":1}`)
	if err := h.s.Commit(ctx, &appliance.Batch{Orders: []appliance.OrderRecord{a}}); err != nil {
		t.Fatalf("Commit() = %v", err)
	}
	if err := h.s.Purge(ctx, appliance.Purge{Orders: []appliance.OrderKey{okey("db", 1, "purged")}}); err != nil {
		t.Fatalf("Purge() = %v", err)
	}
	for _, k := range []appliance.OrderKey{
		okey("db", 1, "00001-001-0002"), // other uid, same session
		okey("db", 2, a.Key.UID),        // other session
		okey("db2", 1, a.Key.UID),       // other database
		okey("db", 1, ""),
		okey("db", 1, "purged"),
	} {
		if _, err := h.s.Order(ctx, k); !errors.Is(err, appliance.ErrNotFound) {
			t.Errorf("Order(%+v) = %v, want ErrNotFound", k, err)
		}
	}
	if err := h.s.Purge(ctx, appliance.Purge{Orders: []appliance.OrderKey{a.Key}}); err != nil {
		t.Fatalf("Purge() = %v", err)
	}
	h.do(0, step{reopen: true})
	if _, err := h.s.Order(ctx, a.Key); !errors.Is(err, appliance.ErrNotFound) {
		t.Errorf("Order(%+v) after Purge = %v, want ErrNotFound", a.Key, err)
	}
}

// testConcurrent commits from 8 goroutines. Ids come from one counter, so
// they increase, but the commits race: LastBusID must still end at the
// highest.
func testConcurrent(t *testing.T, h *harness) {
	const goroutines, commits = 8, 20
	var next atomic.Uint64
	want := appliance.Snapshot{}
	var mu sync.Mutex // guards want
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range commits {
				n := uint64(i%3 + 1)
				first := next.Add(n) - n + 1
				b := &appliance.Batch{
					Sessions:   []appliance.SessionRecord{{Key: skey("db", int64(g)), OrderID: int64(i), RunID: 1}},
					Orders:     []appliance.OrderRecord{order("db", int64(g), fmt.Sprintf("%d-%d", g, i), 1, `{"n":1}`)},
					Broadcasts: []appliance.Broadcast{broadcast(first, int(n))},
				}
				if err := h.s.Commit(context.Background(), b); err != nil {
					t.Errorf("Commit() = %v", err)
					return
				}
				mu.Lock()
				want.Orders = append(want.Orders, b.Orders...)
				want.Broadcasts = append(want.Broadcasts, b.Broadcasts...)
				if i == commits-1 {
					want.Sessions = append(want.Sessions, b.Sessions...)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	slices.SortFunc(want.Broadcasts, func(a, b appliance.Broadcast) int {
		if a.FirstID < b.FirstID {
			return -1
		}
		return 1 // ids are unique
	})
	want.LastBusID = next.Load()
	h.check(&want)
	// Without broadcasts, only the store's own record of LastBusID is
	// left: it must not have lost the race to a lower id.
	if err := h.s.Purge(context.Background(), appliance.Purge{BroadcastsBefore: want.LastBusID + 1}); err != nil {
		t.Fatalf("Purge() = %v", err)
	}
	want.Broadcasts = nil
	h.check(&want)
	if h.persistent {
		h.reopen()
		h.check(&want)
	}
}

// testNoAliasing changes the slices passed to Commit and returned by Load
// and Order, and checks that the store's data did not change.
func testNoAliasing(t *testing.T, h *harness) {
	ctx := context.Background()
	b := &appliance.Batch{
		Orders:     []appliance.OrderRecord{order("db", 1, "u", 1, `{"x":"abc"}`)},
		Broadcasts: []appliance.Broadcast{broadcast(1, 2)},
	}
	want := appliance.Snapshot{
		Orders:     []appliance.OrderRecord{order("db", 1, "u", 1, `{"x":"abc"}`)},
		Broadcasts: []appliance.Broadcast{broadcast(1, 2)},
		LastBusID:  2,
	}
	if err := h.s.Commit(ctx, b); err != nil {
		t.Fatalf("Commit() = %v", err)
	}
	scribble := func(o *appliance.OrderRecord, bc *appliance.Broadcast) {
		if o != nil {
			o.Message[0] = '!'
		}
		if bc != nil {
			bc.Prefix[0], bc.Suffix[0] = '!', '!'
			bc.Targets[0].Channel = "scribbled"
		}
	}
	scribble(&b.Orders[0], &b.Broadcasts[0])
	got, err := h.s.Load(ctx)
	if err != nil {
		t.Fatalf("Load() = %v", err)
	}
	scribble(&got.Orders[0], &got.Broadcasts[0])
	o, err := h.s.Order(ctx, want.Orders[0].Key)
	if err != nil {
		t.Fatalf("Order() = %v", err)
	}
	scribble(&o, nil)
	h.check(&want)
}

func testClose(t *testing.T, h *harness) {
	ctx := context.Background()
	b := &appliance.Batch{Orders: []appliance.OrderRecord{order("db", 1, "u", 1, `{}`)}}
	if err := h.s.Commit(ctx, b); err != nil {
		t.Fatalf("Commit() = %v", err)
	}
	for i := range 2 {
		if err := h.s.Close(); err != nil {
			t.Fatalf("Close() #%d = %v", i+1, err)
		}
	}
	err := h.s.Commit(ctx, b)
	if !errors.Is(err, appliance.ErrClosed) || appliance.ErrorCode(err) != appliance.EUNAVAILABLE {
		t.Errorf("Commit() after Close = %v (code %q), want ErrClosed with code %q",
			err, appliance.ErrorCode(err), appliance.EUNAVAILABLE)
	}
	if _, err := h.s.Load(ctx); !errors.Is(err, appliance.ErrClosed) {
		t.Errorf("Load() after Close = %v, want ErrClosed", err)
	}
	if _, err := h.s.Order(ctx, b.Orders[0].Key); !errors.Is(err, appliance.ErrClosed) {
		t.Errorf("Order() after Close = %v, want ErrClosed", err)
	}
	if err := h.s.Purge(ctx, appliance.Purge{BroadcastsBefore: 10}); !errors.Is(err, appliance.ErrClosed) {
		t.Errorf("Purge() after Close = %v, want ErrClosed", err)
	}
}
