package httpapi_test

// Decision 3: everything acknowledged survives a clean restart, and ids and
// counters continue upward. The terminals keep running across the restart
// (as browsers would) and are only pointed at the new port.

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"possync/appliance/apptest"
)

func TestRestartKeepsState(t *testing.T) {
	t.Parallel()
	srv := newServer(t, apptest.Options{})
	a := openPOS(t, srv, cfg("shop", 1, 1, 2))
	b := openPOS(t, srv, cfg("shop", 1, 2, 5))
	must := mustOK(t)

	o1 := a.NewOrder(1)
	l := a.AddLine(o1, 50, 1, 4.8)
	o1["x_keep"] = map[string]any{"big": json.Number("12345678901234567890"), "emoji": "🧾", "nil": nil}
	update(t, a, o1, revAnswer(o1.UID(), 1, 1, 1))
	update(t, a, o1, revAnswer(o1.UID(), 2, 1, 1))
	o1.SetQty(l, 3)
	lastWrite := o1.Export()
	lastWrite["nonce"] = "before-restart"
	if res, err := a.Send("update_order", lastWrite, nil); err != nil || apptest.Int(res.(map[string]any)["revision_ID"]) != 3 {
		t.Fatalf("third update = %v, %v; want revision 3", res, err)
	}
	o1["revision_ID"] = 3
	o2 := a.NewOrder(2)
	update(t, a, o2, revAnswer(o2.UID(), 1, 2, 1))
	must(a.RemoveOrder(o2, true))
	var firstB apptest.Notification
	for i, step := range []struct{ action, uid string }{
		{"update_order", o1.UID()}, {"update_order", o1.UID()}, {"update_order", o1.UID()},
		{"update_order", o2.UID()}, {"remove_order", o2.UID()},
	} {
		expectMS(t, a, step.action, step.uid)
		got := expectMS(t, b, step.action, step.uid)
		if i == 0 {
			firstB = got
		}
	}
	lastID := max(a.Last(), b.Last())
	ma, mb := a.MessageID(), b.MessageID()

	srv = srv.Restart(t)
	a.SetURL(srv.URL)
	b.SetURL(srv.URL)

	if _, err := a.Ping(); err != nil {
		t.Fatalf("PING after restart: %v", err)
	}
	pong, _, err := a.WaitFor(wait, "PONG", apptest.Notification.IsPong)
	if err != nil {
		t.Fatal(err)
	}
	if pong.ID <= lastID {
		t.Errorf("first bus id after restart = %d, want above %d", pong.ID, lastID)
	}

	t.Run("nonce", func(t *testing.T) {
		dup := apptest.Clone(lastWrite)
		dup["revision_ID"] = 2
		res, err := a.Send("update_order", dup, nil)
		if err != nil || !cmp.Equal(res, map[string]any{"action": ""}) {
			t.Errorf("re-delivered pre-restart write = %v, %v; want {\"action\": \"\"}", res, err)
		}
	})
	t.Run("deleted state", func(t *testing.T) {
		want := map[string]any{"action": "revision_error", "order_uid": o2.UID(), "state": "deleted"}
		if diff := cmp.Diff(want, must(a.UpdateOrder(o2))); diff != "" {
			t.Errorf("update of an order deleted before the restart (-want +got):\n%s", diff)
		}
	})
	t.Run("revision and message_ID", func(t *testing.T) {
		o1.SetQty(l, 4)
		update(t, a, o1, revAnswer(o1.UID(), 4, 1, 1))
		for term, m := range map[*apptest.Terminal]int64{a: ma, b: mb} {
			if got := expectMS(t, term, "update_order", o1.UID()); got.MessageID() != m+1 || got.ID <= lastID {
				t.Errorf("%v: first broadcast after restart has message_ID %d, bus id %d; want %d, above %d",
					term, got.MessageID(), got.ID, m+1, lastID)
			}
		}
	})
	t.Run("numbering", func(t *testing.T) {
		o3 := a.NewOrder(3)
		update(t, a, o3, revAnswer(o3.UID(), 1, 3, 1))
		expectMS(t, a, "update_order", o3.UID())
		expectMS(t, b, "update_order", o3.UID())
	})
	t.Run("orders", func(t *testing.T) {
		res := must(b.SyncAll(true, ""))
		got := syncOrders(t, res)
		if len(got) != 2 || got[o1.UID()] == nil {
			t.Fatalf("sync_all after restart lists %v, want %s and the new order", keys(got), o1.UID())
		}
		want := normalize(o1.Export())
		want["pos_id"] = n(1)
		if diff := cmp.Diff(want, normalize(got[o1.UID()])); diff != "" {
			t.Errorf("order after restart (-want +got):\n%s", diff)
		}
		if id := apptest.Int(res["data"].(map[string]any)["order_ID"]); id != 3 {
			t.Errorf("sync_all order_ID after restart = %d, want 3", id)
		}
	})
	t.Run("bus history", func(t *testing.T) {
		// Retained notifications (decision 5) are still there for a client
		// that resumes with an old last.
		ns, _, err := b.PollOnce(firstB.ID - 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(ns) < 5 || ns[0].ID != firstB.ID {
			t.Errorf("poll with last=%d after restart = %v, want the 5 pre-restart notifications first", firstB.ID-1, ns)
		}
	})

	srv = srv.Restart(t)
	a.SetURL(srv.URL)
	if _, err := a.Ping(); err != nil {
		t.Fatalf("PING after second restart: %v", err)
	}
	again, _, err := a.WaitFor(wait, "PONG", apptest.Notification.IsPong)
	if err != nil {
		t.Fatal(err)
	}
	if again.ID <= pong.ID {
		t.Errorf("bus id after second restart = %d, want above %d", again.ID, pong.ID)
	}
	expectNoGaps(t, a, b)
}
