package httpapi_test

// Edge cases the client produces in normal use: two devices on one POS
// (§5.3, §6.1), single-order sync_all of an unknown uid (§9.1-4 fix) and a
// "new" order that arrives with a revision other than 1 (§9.1-4).

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"possync/appliance/apptest"
)

// Two devices on one POS config share its channel and message counter and
// differ only by login_number: each sees the other's updates in sequence,
// and a device's pushed sync_all is adopted by its sibling (§6.1).
func TestTwoDevicesOnePOS(t *testing.T) {
	t.Parallel()
	srv := newServer(t, apptest.Options{})
	c1 := cfg("shop", 1, 1, 2)
	c2 := c1
	c2.LoginNumber, c2.Name = 2, "POS1 tablet"
	d1 := openPOS(t, srv, c1)
	d2 := openPOS(t, srv, c2)
	other := openPOS(t, srv, cfg("shop", 1, 2, 5))
	must := mustOK(t)

	o1 := d1.NewOrder(1) // uids differ by login number
	update(t, d1, o1, revAnswer(o1.UID(), 1, 1, 1))
	o2 := d2.NewOrder(1)
	update(t, d2, o2, revAnswer(o2.UID(), 1, 2, 1))
	for _, term := range []*apptest.Terminal{d1, d2, other} {
		expectMS(t, term, "update_order", o1.UID())
		expectMS(t, term, "update_order", o2.UID())
	}
	must(d2.SyncAll(false, ""))
	for _, term := range []*apptest.Terminal{d1, d2} { // one channel, both devices poll it
		if got := expectMS(t, term, "sync_all", ""); got.MessageID() != term.MessageID() {
			t.Errorf("%v: sync_all message_ID %d not adopted (counter %d)", term, got.MessageID(), term.MessageID())
		}
	}
	o1.SetQty(d1.AddLine(o1, 50, 1, 1), 2)
	update(t, d1, o1, revAnswer(o1.UID(), 2, 1, 1))
	for _, term := range []*apptest.Terminal{d1, d2, other} {
		expectMS(t, term, "update_order", o1.UID())
	}
	expectQuiet(t, other)
	expectNoGaps(t, d1, d2, other)
}

func TestSyncAllUnknownUID(t *testing.T) {
	t.Parallel()
	srv := newServer(t, apptest.Options{})
	a := openPOS(t, srv, cfg("shop", 1, 1, 2))
	ghost := apptest.OrderUID(999, 1, 42)
	res := mustOK(t)(a.SyncAll(true, ghost))
	d, _ := res["data"].(map[string]any)
	if res["action"] != "sync_all" || d == nil || d["uid"] != ghost {
		t.Fatalf("sync_all for unknown uid = %v, want action sync_all with data.uid %q", res, ghost)
	}
	if orders := syncOrders(t, res); len(orders) != 0 {
		t.Errorf("sync_all for unknown uid lists %v, want orders: [] (§9.1-4)", keys(orders))
	}
}

// An order the server never saw, sent with revision 2 (e.g. restored from an
// older run), is rejected, not created; the client then asks for it alone.
func TestNewOrderWithHigherRevision(t *testing.T) {
	t.Parallel()
	srv := newServer(t, apptest.Options{})
	a := openPOS(t, srv, cfg("shop", 1, 1, 2))
	o := a.NewOrder(1)
	o["revision_ID"] = 2
	res := mustOK(t)(a.UpdateOrder(o))
	got := map[string]any{"action": res["action"], "order_uid": res["order_uid"]}
	if diff := cmp.Diff(map[string]any{"action": "revision_error", "order_uid": o.UID()}, got); diff != "" {
		t.Errorf("new order with revision 2 (-want +got):\n%s\nfull answer: %v", diff, res)
	}
	if orders := syncOrders(t, mustOK(t)(a.SyncAll(true, o.UID()))); len(orders) != 0 {
		t.Errorf("rejected order was stored: %v", keys(orders))
	}
	fresh := a.NewOrder(2)
	update(t, a, fresh, revAnswer(fresh.UID(), 1, 1, 1)) // and it used no number
	expectMS(t, a, "update_order", fresh.UID())          // the rejected one was not broadcast
	expectQuiet(t, a)
}
