package httpapi_test

// Decision 4 and §5.3: many POSes updating at once (run under -race). Every
// POS receives every broadcast exactly once, in order, with consecutive
// message_IDs; each order ends at the right revision; numbers are unique.

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"possync/appliance/apptest"
)

const (
	fleetSize    = 8
	fleetUpdates = 25
)

func TestConcurrentUpdates(t *testing.T) {
	t.Parallel()
	srv := newServer(t, apptest.Options{})
	t.Run("one multi-session", func(t *testing.T) {
		t.Parallel()
		runFleet(t, srv, "one", 1, 1)
	})
	t.Run("two multi-sessions", func(t *testing.T) {
		t.Parallel()
		for ms := int64(1); ms <= 2; ms++ {
			t.Run(fmt.Sprint("ms", ms), func(t *testing.T) {
				t.Parallel()
				runFleet(t, srv, "two", ms, ms*100)
			})
		}
	})
}

// runFleet opens fleetSize POSes in multi-session ms of db, lets each do
// fleetUpdates update_orders of its own order concurrently while all poll,
// and checks what every POS received.
func runFleet(t *testing.T, srv *apptest.Server, db string, ms, posBase int64) {
	terms := make([]*apptest.Terminal, fleetSize)
	start := make([]int64, fleetSize) // message_ID after the start-up sync_all
	for i := range terms {
		terms[i] = apptest.NewTerminal(t, srv.URL, cfg(db, ms, posBase+int64(i), 2+int64(i)))
		if _, err := terms[i].SyncAll(true, ""); err != nil {
			t.Fatal(err)
		}
		start[i] = terms[i].MessageID()
	}
	for _, term := range terms { // every POS row exists before the first broadcast
		term.StartPolling()
	}

	orders := make([]apptest.Order, fleetSize)
	var wg sync.WaitGroup
	for i, term := range terms {
		orders[i] = term.NewOrder(1)
		wg.Go(func() {
			o := orders[i]
			l := term.AddLine(o, 50+int64(i), 1, 1)
			for k := range int64(fleetUpdates) {
				o.SetQty(l, float64(k+1))
				res, err := term.UpdateOrder(o)
				if err != nil {
					t.Error(err)
					return
				}
				if res["action"] != "update_revision_ID" || apptest.Int(res["revision_ID"]) != k+1 {
					t.Errorf("%v update %d of its own order = %v, want update_revision_ID with revision %d", term, k, res, k+1)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	const total = fleetSize * fleetUpdates
	deadline := time.Now().Add(30 * time.Second)
	for i, term := range terms {
		lastRev := map[string]int64{}
		mid := start[i]
		for range total {
			got, _, err := term.WaitFor(time.Until(deadline), "a broadcast", func(x apptest.Notification) bool {
				return x.Kind() == "pos.multi_session"
			})
			if err != nil {
				t.Fatalf("%v: %v (received %d orders' updates)", term, err, len(lastRev))
			}
			if got.Action() != "update_order" || got.MessageID() != mid+1 {
				t.Fatalf("%v received %v after message_ID %d, want update_order with message_ID %d", term, got, mid, mid+1)
			}
			mid = got.MessageID()
			uid, rev := got.UID(), apptest.Int(got.Data()["revision_ID"])
			if rev != lastRev[uid]+1 {
				t.Fatalf("%v received %s revision %d after revision %d", term, uid, rev, lastRev[uid])
			}
			lastRev[uid] = rev
		}
		if len(lastRev) != fleetSize {
			t.Errorf("%v received updates of %d orders, want %d", term, len(lastRev), fleetSize)
		}
		expectQuiet(t, term) // nothing twice, nothing extra
	}
	expectNoGaps(t, terms...)

	synced := syncOrders(t, mustOK(t)(terms[0].SyncAll(true, "")))
	var numbers []int64
	for _, o := range orders {
		d := synced[o.UID()]
		if got := apptest.Int(d["revision_ID"]); got != fleetUpdates {
			t.Errorf("order %s final revision_ID = %d, want %d", o.UID(), got, fleetUpdates)
		}
		numbers = append(numbers, apptest.Int(d["sequence_number"]))
	}
	slices.Sort(numbers)
	if want := []int64{1, 2, 3, 4, 5, 6, 7, 8}; !slices.Equal(numbers, want) {
		t.Errorf("sequence numbers = %v, want %v", numbers, want)
	}
}
