package httpapi_test

// Order rules of §4.2-§4.4: shared numbering, revision checks, nonce
// duplicates, is_changed, removal and the paid-offline path.

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"possync/appliance/apptest"
)

// §4.2 step 5, §5.2: the shared number is handed out when the server first
// sees an order; a clashing local number is replaced and the answer's
// order_ID tells the client to renumber.
func TestSharedNumbering(t *testing.T) {
	t.Parallel()
	srv := newServer(t, apptest.Options{})
	a := openPOS(t, srv, cfg("shop", 1, 1, 2))
	b := openPOS(t, srv, cfg("shop", 1, 2, 5))
	must := mustOK(t)
	steps := []struct {
		pos      *apptest.Terminal
		localSeq int64
		want     int64 // order_ID in the answer and sequence_number in the broadcast
	}{
		{a, 1, 1},
		{b, 1, 2}, // both POSes start at 1: B's order is renumbered
		{a, 2, 3}, // A's next local number clashes with B's
		{b, 4, 4}, // B's local number was raised from the answer: no renumbering
		{b, 9, 5}, // a too high local number is corrected too
	}
	for i, s := range steps {
		o := s.pos.NewOrder(s.localSeq)
		s.pos.AddLine(o, 50, 1, 1)
		update(t, s.pos, o, revAnswer(o.UID(), 1, s.want, 1))
		if got := apptest.Int(o["sequence_number"]); got != s.want {
			t.Errorf("step %d: client-side sequence_number after the answer = %d, want %d", i, got, s.want)
		}
		for _, term := range []*apptest.Terminal{a, b} {
			got := expectMS(t, term, "update_order", o.UID()).Data()["sequence_number"]
			if got != n(s.want) {
				t.Errorf("step %d: %v received sequence_number %v, want %d", i, term, got, s.want)
			}
		}
	}
	res := must(a.SyncAll(true, ""))
	if got := res["data"].(map[string]any)["order_ID"]; got != n(5) {
		t.Errorf("sync_all data.order_ID = %v, want 5", got)
	}
	expectNoGaps(t, a, b)
}

// §4.2 steps 2-3 and §4.4 step 3: stale revisions, deleted orders and
// duplicates are answered as results, and nothing is broadcast.
func TestRevisionChecks(t *testing.T) {
	t.Parallel()
	srv := newServer(t, apptest.Options{})
	tests := []struct {
		name      string
		deleted   bool // remove the order (at revision 3) first
		action    string
		revision  int64
		nonce     string // "" = fresh; "last" = the nonce of the last accepted write
		want      func(uid string) map[string]any
		broadcast bool
	}{
		{"stale update", false, "update_order", 2, "", func(uid string) map[string]any {
			return map[string]any{"action": "revision_error", "order_uid": uid, "state": "draft"}
		}, false},
		{"future update", false, "update_order", 7, "", func(uid string) map[string]any {
			return map[string]any{"action": "revision_error", "order_uid": uid, "state": "draft"}
		}, false},
		{"update of deleted order", true, "update_order", 3, "", func(uid string) map[string]any {
			return map[string]any{"action": "revision_error", "order_uid": uid, "state": "deleted"}
		}, false},
		{"stale update of deleted order", true, "update_order", 1, "", func(uid string) map[string]any {
			return map[string]any{"action": "revision_error", "order_uid": uid, "state": "deleted"}
		}, false},
		{"duplicate update", false, "update_order", 2, "last", func(string) map[string]any {
			return map[string]any{"action": ""}
		}, false},
		{"stale remove", false, "remove_order", 1, "", func(uid string) map[string]any {
			return map[string]any{"action": "revision_error", "order_uid": uid} // no state key (§4.4)
		}, false},
		{"duplicate remove", false, "remove_order", 2, "last", func(string) map[string]any {
			return map[string]any{"order_ID": n(1)} // a nonce duplicate counts as OK (§4.4 step 3)
		}, true},
		{"remove of deleted order", true, "remove_order", 1, "", func(string) map[string]any {
			return map[string]any{"order_ID": n(1)} // no revision check once deleted
		}, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := "rev" + string(rune('a'+i)) // each case in its own database
			writer := apptest.NewTerminal(t, srv.URL, cfg(db, 1, 1, 2))
			watcher := openPOS(t, srv, cfg(db, 1, 2, 5))
			o := writer.NewOrder(1)
			l := writer.AddLine(o, 50, 1, 1)
			last := ""
			for rev := int64(1); rev <= 3; rev++ {
				o.SetQty(l, float64(rev))
				data := o.Export()
				last = "n" + string(rune('0'+rev))
				data["nonce"] = last
				res, err := writer.Send("update_order", data, nil)
				if err != nil {
					t.Fatal(err)
				}
				o["revision_ID"] = apptest.Int(res.(map[string]any)["revision_ID"])
				expectMS(t, watcher, "update_order", o.UID())
			}
			if tt.deleted {
				res := mustOK(t)(writer.RemoveOrder(o, false))
				if diff := cmp.Diff(map[string]any{"order_ID": n(1)}, res); diff != "" {
					t.Fatalf("remove_order (-want +got):\n%s", diff)
				}
				expectMS(t, watcher, "remove_order", o.UID())
			}
			data := o.Export()
			if tt.action == "remove_order" {
				data = map[string]any{"uid": o.UID(), "finalized": false, "run_ID": 1}
			}
			data["revision_ID"] = tt.revision
			if tt.nonce == "last" {
				data["nonce"] = last
			}
			res, err := writer.Send(tt.action, data, nil)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want(o.UID()), res); diff != "" {
				t.Errorf("%s with revision %d: answer mismatch (-want +got):\n%s", tt.action, tt.revision, diff)
			}
			if tt.broadcast {
				expectMS(t, watcher, tt.action, o.UID())
			}
			expectQuiet(t, watcher)
			expectNoGaps(t, watcher)
		})
	}
}

// §4.2 step 4: only known lines that changed get is_changed: true (the line
// id and a stale is_changed on one side are ignored; new lines get no flag);
// §9.1-8 fix: every line of every order in sync_all answers is marked.
func TestIsChanged(t *testing.T) {
	t.Parallel()
	srv := newServer(t, apptest.Options{})
	a := openPOS(t, srv, cfg("shop", 1, 1, 2))
	b := openPOS(t, srv, cfg("shop", 1, 2, 5))
	must := mustOK(t)

	o := a.NewOrder(1)
	qty := a.AddLine(o, 50, 1, 4.8)
	idOnly := a.AddLine(o, 51, 1, 2)
	same := a.AddLine(o, 52, 1, 3)
	update(t, a, o, revAnswer(o.UID(), 1, 1, 1))
	expectMS(t, b, "update_order", o.UID())

	flags := func(nt apptest.Notification) map[string]any {
		out := map[string]any{}
		for _, l := range apptest.Lines(nt.Data()) {
			out[l["uid"].(string)] = l["is_changed"]
		}
		return out
	}
	o.SetQty(qty, 2)
	o.Line(idOnly)["id"] = 99
	added := a.AddLine(o, 53, 1, 1)
	update(t, a, o, revAnswer(o.UID(), 2, 1, 1))
	want := map[string]any{qty: true, idOnly: nil, same: nil, added: nil}
	if diff := cmp.Diff(want, flags(expectMS(t, b, "update_order", o.UID()))); diff != "" {
		t.Errorf("is_changed after changing %s (-want +got):\n%s", qty, diff)
	}

	// The stored copy of qty now carries is_changed; sending it unchanged
	// must not mark it again.
	o.SetQty(same, 5)
	update(t, a, o, revAnswer(o.UID(), 3, 1, 1))
	want = map[string]any{qty: nil, idOnly: nil, same: true, added: nil}
	if diff := cmp.Diff(want, flags(expectMS(t, b, "update_order", o.UID()))); diff != "" {
		t.Errorf("is_changed after changing %s (-want +got):\n%s", same, diff)
	}

	allMarked := map[string]any{qty: true, idOnly: true, same: true, added: true}
	check := func(what string, msg map[string]any) {
		t.Helper()
		d := syncOrders(t, msg)[o.UID()]
		if diff := cmp.Diff(allMarked, flags(apptest.Notification{Message: map[string]any{"data": d}})); diff != "" {
			t.Errorf("%s: is_changed (-want +got):\n%s", what, diff)
		}
	}
	check("immediate full sync_all", must(b.SyncAll(true, "")))
	check("immediate single-order sync_all", must(b.SyncAll(true, o.UID())))
	must(b.SyncAll(false, ""))
	sa, _, err := b.WaitAction(wait, "sync_all", "")
	if err != nil {
		t.Fatal(err)
	}
	check("pushed sync_all", sa.Msg())
}

// §4.4: remove_order of a known order, of an unknown uid, and the
// paid-offline variant with order_data as a JSON string.
func TestRemoveOrder(t *testing.T) {
	t.Parallel()
	must := mustOK(t)

	t.Run("known order", func(t *testing.T) {
		t.Parallel()
		srv := newServer(t, apptest.Options{})
		a := openPOS(t, srv, cfg("shop", 1, 1, 2))
		b := openPOS(t, srv, cfg("shop", 1, 2, 5))
		o := a.NewOrder(1)
		a.AddLine(o, 50, 1, 1)
		update(t, a, o, revAnswer(o.UID(), 1, 1, 1))
		expectMS(t, b, "update_order", o.UID())
		if diff := cmp.Diff(map[string]any{"order_ID": n(1)}, must(a.RemoveOrder(o, true))); diff != "" {
			t.Fatalf("remove_order answer (-want +got):\n%s", diff)
		}
		got := expectMS(t, b, "remove_order", o.UID()).Data()
		want := map[string]any{"uid": o.UID(), "revision_ID": n(1), "finalized": true, "run_ID": n(1),
			"pos_id": n(1), "nonce": got["nonce"], "message_ID": got["message_ID"]}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("relayed remove_order data (-want +got):\n%s", diff)
		}
		if orders := syncOrders(t, must(b.SyncAll(true, ""))); len(orders) != 0 {
			t.Errorf("full sync_all after removal lists %v, want none", keys(orders))
		}
		if orders := syncOrders(t, must(b.SyncAll(true, o.UID()))); len(orders) != 1 {
			t.Errorf("single-order sync_all of a deleted order lists %v, want it (any state, §4.3)", keys(orders))
		}
	})

	t.Run("unknown uid", func(t *testing.T) {
		t.Parallel()
		srv := newServer(t, apptest.Options{})
		a := openPOS(t, srv, cfg("shop", 1, 1, 2))
		b := openPOS(t, srv, cfg("shop", 1, 2, 5))
		ghost := a.NewOrder(7)
		if diff := cmp.Diff(map[string]any{"order_ID": n(0)}, must(a.RemoveOrder(ghost, false))); diff != "" {
			t.Fatalf("remove_order of unknown uid answer (-want +got):\n%s", diff)
		}
		expectMS(t, b, "remove_order", ghost.UID()) // §9.1-14: broadcast anyway
		o := a.NewOrder(1)
		update(t, a, o, revAnswer(o.UID(), 1, 1, 1)) // and no number was used
		expectNoGaps(t, a, b)
	})

	t.Run("paid offline", func(t *testing.T) {
		t.Parallel()
		srv := newServer(t, apptest.Options{})
		a := openPOS(t, srv, cfg("shop", 1, 1, 2))
		b := openPOS(t, srv, cfg("shop", 1, 2, 5))
		first := b.NewOrder(1)
		update(t, b, first, revAnswer(first.UID(), 1, 1, 1))
		expectMS(t, b, "update_order", first.UID())
		expectMS(t, a, "update_order", first.UID())

		p := a.NewOrder(1) // paid while offline: never sent
		a.AddLine(p, 50, 2, 4.8)
		p["x_note"] = "paid cash"
		if diff := cmp.Diff(map[string]any{"order_ID": n(2)}, must(a.RemovePaidOffline(p))); diff != "" {
			t.Fatalf("paid-offline remove_order answer (-want +got):\n%s", diff)
		}
		rm := expectMS(t, b, "remove_order", p.UID())
		rec, ok := rm.Data()["order_data"].(string)
		if !ok {
			t.Fatalf("relayed order_data is %T, want the JSON string unchanged", rm.Data()["order_data"])
		}
		var decoded map[string]any
		if err := apptest.DecodeJSON([]byte(rec), &decoded); err != nil || decoded["id"] != p.UID() {
			t.Errorf("relayed order_data = %.200q (%v), want {\"id\":%q,...}", rec, err, p.UID())
		}
		expectQuiet(t, b) // the stored copy itself is not broadcast

		stored := syncOrders(t, must(b.SyncAll(true, p.UID())))[p.UID()]
		want := normalize(p.Export())
		want["sequence_number"], want["revision_ID"], want["run_ID"] = n(2), n(1), n(1)
		if diff := cmp.Diff(want, normalize(stored)); diff != "" {
			t.Errorf("stored paid-offline order (-want +got):\n%s", diff)
		}
		if stored["nonce"] != "paid offline" {
			t.Errorf("stored paid-offline order nonce = %v, want \"paid offline\"", stored["nonce"])
		}
		if orders := syncOrders(t, must(b.SyncAll(true, ""))); len(orders) != 1 {
			t.Errorf("full sync_all lists %v, want only %s (the paid one is deleted)", keys(orders), first.UID())
		}
		res := must(a.UpdateOrder(p))
		if diff := cmp.Diff(map[string]any{"action": "revision_error", "order_uid": p.UID(), "state": "deleted"}, res); diff != "" {
			t.Errorf("update of the paid-offline order (-want +got):\n%s", diff)
		}
	})

	t.Run("order_data of a known order", func(t *testing.T) {
		t.Parallel()
		srv := newServer(t, apptest.Options{})
		a := openPOS(t, srv, cfg("shop", 1, 1, 2))
		o := a.NewOrder(1)
		update(t, a, o, revAnswer(o.UID(), 1, 1, 1))
		o["x_note"] = "changed after the last sync"
		if diff := cmp.Diff(map[string]any{"order_ID": n(1)}, must(a.RemovePaidOffline(o))); diff != "" {
			t.Fatalf("paid-offline remove of a known order (-want +got):\n%s", diff)
		}
		stored := syncOrders(t, must(a.SyncAll(true, o.UID())))[o.UID()]
		if _, ok := stored["x_note"]; ok || stored["nonce"] == "paid offline" {
			t.Errorf("order_data of a known order was stored: %v", stored)
		}
	})
}
