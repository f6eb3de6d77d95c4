package httpapi_test

// §5.4 run_ID transitions with the possync fixes of decision 6: a new run
// always resets numbering to 0 (§9.1-6), drafts of older runs become unpaid
// and leave full sync_all answers, and an accepted update of an unpaid order
// makes it draft again (§9.1-7).

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"possync/appliance/apptest"
)

func TestRunIDChange(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name       string
		keepDrafts bool // old-run orders stay open (else they are removed before the new run)
	}{
		{"old drafts", true},
		{"no old drafts", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, apptest.Options{})
			a := openPOS(t, srv, cfg("shop", 1, 1, 2))
			b := openPOS(t, srv, cfg("shop", 1, 2, 5)) // stays in run 1
			must := mustOK(t)

			o1, o2 := a.NewOrder(1), a.NewOrder(2)
			update(t, a, o1, revAnswer(o1.UID(), 1, 1, 1))
			update(t, a, o2, revAnswer(o2.UID(), 1, 2, 1))
			if !tt.keepDrafts {
				must(a.RemoveOrder(o1, true))
				must(a.RemoveOrder(o2, true))
			}

			a.SetRunID(2) // the main Odoo closed the last session and started run 2
			res := must(a.SyncAll(true, ""))
			want := map[string]any{"action": "sync_all", "data": map[string]any{
				"orders": []any{}, "message_ID": res["data"].(map[string]any)["message_ID"], "order_ID": n(0),
				"uid": nil, "login_number": n(1), "session_id": n(101)}}
			if diff := cmp.Diff(want, res); diff != "" {
				t.Fatalf("first sync_all of run 2 (-want +got):\n%s", diff)
			}
			nw := a.NewOrder(3)
			update(t, a, nw, revAnswer(nw.UID(), 1, 1, 2)) // numbering restarts at 1

			if !tt.keepDrafts {
				return
			}
			if orders := syncOrders(t, must(b.SyncAll(true, ""))); len(orders) != 0 {
				t.Errorf("run-1 full sync_all after run 2 started lists %v, want none (old drafts are unpaid)", keys(orders))
			}
			// A POS of the new run re-sends an old order (its copy says run 2,
			// as a single-order sync_all of run 2 hands it out): it is draft
			// again and moves into run 2, where it gets that run's next number.
			// Its run-1 number 1 is nw's in run 2 (the reference kept it: two
			// open orders numbered 1).
			o1["run_ID"] = 2
			update(t, a, o1, revAnswer(o1.UID(), 2, 2, 2))
			got := syncOrders(t, must(a.SyncAll(true, "")))
			run2 := map[string]any{nw.UID(): n(1), o1.UID(): n(2)}
			if diff := cmp.Diff(run2, numbers(got)); diff != "" {
				t.Errorf("run-2 full sync_all: numbers by uid (-want +got):\n%s", diff)
			}
			// An old-run POS updates the other unpaid order (lower run_IDs are
			// not rejected, §5.4): draft again, in run 1, with its number.
			o2c := apptest.OrderFromData(o2.Export())
			update(t, b, o2c, revAnswer(o2.UID(), 2, 2, 1))
			got = syncOrders(t, must(b.SyncAll(true, "")))
			if diff := cmp.Diff(map[string]any{o2.UID(): n(2)}, numbers(got)); diff != "" {
				t.Errorf("run-1 full sync_all after the update of an unpaid order (-want +got):\n%s", diff)
			}
			if got := apptest.Int(got[o2.UID()]["run_ID"]); got != 1 {
				t.Errorf("sync_all copy run_ID = %d, want the requester's run 1", got)
			}
			// An old-run POS writes an order of run 2 (its copy says run 1, as
			// its own single-order sync_all hands it out): the order stays in
			// run 2 with its number, so run-2 terminals keep it.
			nwc := apptest.OrderFromData(syncOrders(t, must(b.SyncAll(true, nw.UID())))[nw.UID()])
			if got := apptest.Int(nwc["run_ID"]); got != 1 {
				t.Fatalf("single-order sync_all copy run_ID = %d, want the requester's run 1", got)
			}
			update(t, b, nwc, revAnswer(nw.UID(), 2, 1, 2))
			got = syncOrders(t, must(a.SyncAll(true, "")))
			if diff := cmp.Diff(run2, numbers(got)); diff != "" {
				t.Errorf("run-2 full sync_all after an old-run write of %s (-want +got):\n%s", nw.UID(), diff)
			}
		})
	}
}

// numbers returns sequence_number by uid of sync_all orders.
func numbers(orders map[string]map[string]any) map[string]any {
	out := make(map[string]any, len(orders))
	for uid, d := range orders {
		out[uid] = d["sequence_number"]
	}
	return out
}
