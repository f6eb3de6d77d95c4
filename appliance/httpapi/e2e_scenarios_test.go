package httpapi_test

// The scenarios of protocol.md §10 (the Odoo tests and the external
// multi-browser tests of pos_multi_session), re-expressed with simulated
// terminals. Users as in ext_tests@12.0: admin (2) on POS "Main" (1), demo (5)
// on POS1 (2), demo2 (6) on POS2 (3), all in multi-session 1 of db "shop".

import (
	"encoding/json"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"possync/appliance/apptest"
)

// test_the_same_request: a re-delivered request (same nonce, revision already
// advanced) is answered {"action": ""} and not applied or broadcast again.
func TestSameRequest(t *testing.T) {
	t.Parallel()
	srv := newServer(t, apptest.Options{})
	watcher := openPOS(t, srv, cfg("shop", 1, 2, 5))
	pos := apptest.NewTerminal(t, srv.URL, cfg("shop", 1, 1, 2))

	o := pos.NewOrder(1)
	pos.AddLine(o, 50, 1, 4.8)
	data := o.Export()
	data["nonce"] = "test_nonce"
	res, err := pos.Send("update_order", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(revAnswer(o.UID(), 1, 1, 1), res); diff != "" {
		t.Fatalf("first update_order answer mismatch (-want +got):\n%s", diff)
	}
	data["revision_ID"] = 2
	res, err = pos.Send("update_order", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]any{"action": ""}, res); diff != "" {
		t.Fatalf("repeated update_order (same nonce) answer mismatch (-want +got):\n%s", diff)
	}
	expectMS(t, watcher, "update_order", o.UID())
	expectQuiet(t, watcher) // the duplicate was not broadcast
}

// test_pos.test_open_pos, test_pos_ms_r and test_longpolling_pos: a POS
// loads (immediate sync_all in the HTTP answer), its bus connects (PING →
// PONG), and a new order with "LED Lamp" is accepted. The restaurant variant
// sends the empty table order at once (msr.js L97-104).
func TestOpenPOS(t *testing.T) {
	t.Parallel()
	for _, restaurant := range []bool{false, true} {
		name := map[bool]string{false: "bar", true: "restaurant"}[restaurant]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, apptest.Options{})
			pos := apptest.NewTerminal(t, srv.URL, cfg("shop", 1, 1, 2))
			res := mustOK(t)(pos.SyncAll(true, ""))
			// §4.3: POS row created with message_ID 1, incremented to 2.
			want := map[string]any{"action": "sync_all", "data": map[string]any{
				"orders": []any{}, "message_ID": n(2), "order_ID": n(0), "uid": nil,
				"login_number": n(1), "session_id": n(101)}}
			if diff := cmp.Diff(want, res); diff != "" {
				t.Fatalf("start-up sync_all answer mismatch (-want +got):\n%s", diff)
			}
			pos.StartPolling()
			if got, err := pos.Ping(); err != nil || got != json.Number("1") {
				t.Fatalf("Ping() = %v, %v; want 1", got, err)
			}
			if _, _, err := pos.WaitFor(wait, "PONG", apptest.Notification.IsPong); err != nil {
				t.Fatal(err)
			}

			o := pos.NewOrder(1)
			rev := int64(1)
			if restaurant {
				o["table_id"], o["floor_id"], o["floor"], o["customer_count"] = 2, 1, "Main Floor", 3
				update(t, pos, o, revAnswer(o.UID(), 1, 1, 1))
				expectMS(t, pos, "update_order", o.UID())
				rev = 2
			}
			pos.AddLine(o, 50, 1, 4.8) // LED Lamp
			update(t, pos, o, revAnswer(o.UID(), rev, 1, 1))
			echo := expectMS(t, pos, "update_order", o.UID())
			if restaurant && echo.Data()["table_id"] != json.Number("2") {
				t.Errorf("echo data.table_id = %v, want 2", echo.Data()["table_id"])
			}
			expectNoGaps(t, pos)
		})
	}
}

// test_sync.test_10_new_order (and test_10_sessions): admin fills an order;
// the other POSes show an identical order (same number, same lines).
func TestNewOrderReachesOtherPOS(t *testing.T) {
	t.Parallel()
	srv := newServer(t, apptest.Options{})
	admin := openPOS(t, srv, cfg("shop", 1, 1, 2))
	demo := openPOS(t, srv, cfg("shop", 1, 2, 5))
	demo2 := openPOS(t, srv, cfg("shop", 1, 3, 6))
	must := mustOK(t)

	o := admin.NewOrder(1)
	var sent, answer map[string]any
	for i, p := range []int64{50, 51, 52} {
		admin.AddLine(o, p, float64(i+1), 2.5)
		sent = o.Export()
		answer = must(admin.UpdateOrder(o))
		if diff := cmp.Diff(revAnswer(o.UID(), int64(i+1), 1, 1), answer); diff != "" {
			t.Fatalf("update %d answer mismatch (-want +got):\n%s", i, diff)
		}
	}
	want := sentAs(admin, sent, answer)
	for _, term := range []*apptest.Terminal{admin, demo, demo2} {
		var last apptest.Notification
		for range 3 {
			last = expectMS(t, term, "update_order", o.UID())
		}
		if diff := cmp.Diff(want, normalize(last.Data())); diff != "" {
			t.Errorf("%v: order after 3 updates differs from admin's (-want +got):\n%s", term, diff)
		}
	}
	got := syncOrders(t, must(demo.SyncAll(true, "")))
	if diff := cmp.Diff(want, normalize(got[o.UID()])); diff != "" {
		t.Errorf("demo's sync_all copy differs from admin's order (-want +got):\n%s", diff)
	}
	expectNoGaps(t, admin, demo, demo2)
}

// loseBus simulates the bus history being wiped (ext_tests gc) while term
// was offline: the notifications it would have read are dropped.
func loseBus(t *testing.T, term *apptest.Terminal, wantLost int) {
	t.Helper()
	lost, _, err := term.PollOnce(term.Last())
	if err != nil {
		t.Fatal(err)
	}
	if len(lost) != wantLost {
		t.Fatalf("%v had %d pending notifications %v, want %d", term, len(lost), lost, wantLost)
	}
	term.SetLast(lost[len(lost)-1].ID)
}

// test_sync.test_20_offline_update_order: demo goes offline, admin updates
// twice, the bus history is lost, demo creates an order offline and
// reconnects (pushed full sync_all), admin updates again: no conflict on
// admin, demo ends with admin's version and its offline order is numbered.
func TestOfflineUpdateOrder(t *testing.T) {
	t.Parallel()
	srv := newServer(t, apptest.Options{})
	admin := openPOS(t, srv, cfg("shop", 1, 1, 2))
	demo := openPOS(t, srv, cfg("shop", 1, 2, 5))
	must := mustOK(t)

	o := admin.NewOrder(1)
	l1 := admin.AddLine(o, 50, 1, 4.8)
	update(t, admin, o, revAnswer(o.UID(), 1, 1, 1))
	expectMS(t, demo, "update_order", o.UID())

	demo.StopPolling() // offline
	l2 := admin.AddLine(o, 51, 2, 3)
	update(t, admin, o, revAnswer(o.UID(), 2, 1, 1))
	o.SetQty(l2, 5)
	sent := o.Export()
	answer := must(admin.UpdateOrder(o))
	for range 3 {
		expectMS(t, admin, "update_order", o.UID()) // own echoes
	}
	loseBus(t, demo, 2)

	d := demo.NewOrder(1) // created offline, not on the server yet
	demo.AddLine(d, 52, 1, 2.5)

	demo.StartPolling() // online again: full sync_all, pushed (§6.2)
	if res := must(demo.SyncAll(false, "")); len(res) != 0 {
		t.Fatalf("non-immediate sync_all HTTP result = %v, want {}", res)
	}
	sa, _, err := demo.WaitAction(wait, "sync_all", "")
	if err != nil {
		t.Fatal(err)
	}
	orders := syncOrders(t, sa.Msg())
	if diff := cmp.Diff([]string{o.UID()}, keys(orders)); diff != "" {
		t.Fatalf("pushed sync_all orders mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(sentAs(admin, sent, answer), normalize(orders[o.UID()])); diff != "" {
		t.Errorf("demo's resynced order differs from admin's (-want +got):\n%s", diff)
	}
	update(t, demo, d, revAnswer(d.UID(), 1, 2, 1)) // send_draft_offline_orders: next shared number
	expectMS(t, demo, "update_order", d.UID())
	if got := expectMS(t, admin, "update_order", d.UID()).Data()["sequence_number"]; got != n(2) {
		t.Errorf("admin received demo's offline order with sequence_number %v, want 2", got)
	}

	o.SetQty(l1, 3)
	sent = o.Export()
	answer = must(admin.UpdateOrder(o))
	if diff := cmp.Diff(revAnswer(o.UID(), 4, 1, 1), answer); diff != "" {
		t.Fatalf("admin's update after demo's reconnect (-want +got):\n%s", diff)
	}
	got := expectMS(t, demo, "update_order", o.UID())
	if diff := cmp.Diff(sentAs(admin, sent, answer), normalize(got.Data())); diff != "" {
		t.Errorf("demo's order differs from admin's (-want +got):\n%s", diff)
	}
	expectNoGaps(t, admin, demo)
}

// The gap detection test_20 relies on: a POS whose bus lost notifications
// without noticing sees a message_ID jump, asks for a pushed sync_all, and is
// consistent again.
func TestLostNotificationsDetected(t *testing.T) {
	t.Parallel()
	srv := newServer(t, apptest.Options{})
	admin := openPOS(t, srv, cfg("shop", 1, 1, 2))
	demo := openPOS(t, srv, cfg("shop", 1, 2, 5))
	must := mustOK(t)

	o := admin.NewOrder(1)
	admin.AddLine(o, 50, 1, 4.8)
	update(t, admin, o, revAnswer(o.UID(), 1, 1, 1))
	expectMS(t, demo, "update_order", o.UID())
	before := demo.MessageID()

	demo.StopPolling()
	update(t, admin, o, revAnswer(o.UID(), 2, 1, 1))
	loseBus(t, demo, 1)
	demo.StartPolling()
	update(t, admin, o, revAnswer(o.UID(), 3, 1, 1))
	expectMS(t, demo, "update_order", o.UID())
	wantGap := []apptest.Gap{{Action: "update_order", UID: o.UID(), Want: before + 1, Got: before + 2}}
	if diff := cmp.Diff(wantGap, demo.Gaps(), cmp.FilterPath(func(p cmp.Path) bool {
		return p.Last().String() == ".BusID"
	}, cmp.Ignore())); diff != "" {
		t.Fatalf("gaps detected by demo (-want +got):\n%s", diff)
	}
	demo.ClearGaps()
	must(demo.SyncAll(false, ""))
	sa, _, err := demo.WaitAction(wait, "sync_all", "")
	if err != nil {
		t.Fatal(err)
	}
	if got := apptest.Int(syncOrders(t, sa.Msg())[o.UID()]["revision_ID"]); got != 3 {
		t.Errorf("resynced revision_ID = %d, want 3", got)
	}
	update(t, admin, o, revAnswer(o.UID(), 4, 1, 1))
	expectMS(t, demo, "update_order", o.UID())
	expectNoGaps(t, demo, admin)
}

// test_sync.test_21_offline_remove_order: admin removes an order while demo
// is offline and the bus history is lost; after reconnecting, demo's full
// sync_all no longer lists it, and demo's own removal of its stale copy and
// its offline order are accepted.
func TestOfflineRemoveOrder(t *testing.T) {
	t.Parallel()
	srv := newServer(t, apptest.Options{})
	admin := openPOS(t, srv, cfg("shop", 1, 1, 2))
	demo := openPOS(t, srv, cfg("shop", 1, 2, 5))
	must := mustOK(t)

	o := admin.NewOrder(1)
	admin.AddLine(o, 50, 1, 4.8)
	update(t, admin, o, revAnswer(o.UID(), 1, 1, 1))
	demoCopy := apptest.OrderFromData(expectMS(t, demo, "update_order", o.UID()).Data())
	expectMS(t, admin, "update_order", o.UID())

	demo.StopPolling()
	if diff := cmp.Diff(map[string]any{"order_ID": n(1)}, must(admin.RemoveOrder(o, false))); diff != "" {
		t.Fatalf("remove_order answer mismatch (-want +got):\n%s", diff)
	}
	expectMS(t, admin, "remove_order", o.UID())
	loseBus(t, demo, 1)
	d := demo.NewOrder(1)
	demo.AddLine(d, 52, 1, 2.5)

	demo.StartPolling()
	must(demo.SyncAll(false, ""))
	sa, _, err := demo.WaitAction(wait, "sync_all", "")
	if err != nil {
		t.Fatal(err)
	}
	if orders := syncOrders(t, sa.Msg()); len(orders) != 0 {
		t.Fatalf("sync_all after removal lists %v, want no orders", keys(orders))
	}
	// destroy_removed_orders: demo drops its copy and, not syncing any more,
	// sends remove_order for it; the order is already deleted, so no
	// revision check (§4.4 step 3).
	if diff := cmp.Diff(map[string]any{"order_ID": n(1)}, must(demo.RemoveOrder(demoCopy, false))); diff != "" {
		t.Errorf("demo's remove_order of the deleted order (-want +got):\n%s", diff)
	}
	update(t, demo, d, revAnswer(d.UID(), 1, 2, 1))
	expectMS(t, admin, "remove_order", o.UID())
	expectMS(t, admin, "update_order", d.UID())
	expectNoGaps(t, admin, demo)
}

// test_sync.test_30_slow: admin and demo edit the same order; the later
// (stale) edit is rejected with revision_error and demo resyncs that order;
// admin's lines survive.
func TestConflictingEdits(t *testing.T) {
	t.Parallel()
	t.Run("stale edit", func(t *testing.T) {
		t.Parallel()
		srv := newServer(t, apptest.Options{})
		admin := openPOS(t, srv, cfg("shop", 1, 1, 2))
		demo := openPOS(t, srv, cfg("shop", 1, 2, 5))
		must := mustOK(t)
		o := admin.NewOrder(1)
		admin.AddLine(o, 50, 1, 4.8)
		update(t, admin, o, revAnswer(o.UID(), 1, 1, 1))
		demoCopy := apptest.OrderFromData(expectMS(t, demo, "update_order", o.UID()).Data())
		expectMS(t, admin, "update_order", o.UID())

		admin.AddLine(o, 51, 2, 3)
		sent := o.Export()
		answer := must(admin.UpdateOrder(o))
		demo.AddLine(demoCopy, 60, 1, 1)
		want := map[string]any{"action": "revision_error", "order_uid": o.UID(), "state": "draft"}
		if diff := cmp.Diff(want, must(demo.UpdateOrder(demoCopy))); diff != "" {
			t.Fatalf("stale update answer mismatch (-want +got):\n%s", diff)
		}
		must(demo.SyncAll(false, o.UID())) // request_sync_all({uid}) after the conflict
		sa, _, err := demo.WaitAction(wait, "sync_all", "")
		if err != nil {
			t.Fatal(err)
		}
		if got := sa.Data()["uid"]; got != o.UID() {
			t.Errorf("single-order sync_all data.uid = %v, want %q", got, o.UID())
		}
		if diff := cmp.Diff(sentAs(admin, sent, answer), normalize(syncOrders(t, sa.Msg())[o.UID()])); diff != "" {
			t.Errorf("demo's resynced order is not admin's version (-want +got):\n%s", diff)
		}
		expectMS(t, admin, "update_order", o.UID())
		expectQuiet(t, admin) // neither the rejected write nor demo's sync_all reach admin
		expectNoGaps(t, admin, demo)
	})
	t.Run("concurrent writers", func(t *testing.T) {
		t.Parallel()
		srv := newServer(t, apptest.Options{})
		admin := apptest.NewTerminal(t, srv.URL, cfg("shop", 1, 1, 2))
		demo := apptest.NewTerminal(t, srv.URL, cfg("shop", 1, 2, 5))
		o := admin.NewOrder(1)
		update(t, admin, o, revAnswer(o.UID(), 1, 1, 1))
		copies := []apptest.Order{o, apptest.OrderFromData(o)}
		actions := make([]any, 2)
		var wg sync.WaitGroup
		for i, term := range []*apptest.Terminal{admin, demo} {
			wg.Go(func() {
				term.AddLine(copies[i], 50+int64(i), 1, 1)
				res, err := term.UpdateOrder(copies[i])
				if err != nil {
					t.Error(err)
					return
				}
				actions[i] = res["action"]
			})
		}
		wg.Wait()
		got := map[any]int{actions[0]: 1}
		got[actions[1]]++
		if diff := cmp.Diff(map[any]int{"update_revision_ID": 1, "revision_error": 1}, got); diff != "" {
			t.Errorf("two concurrent updates of revision 1 (-want +got):\n%s", diff)
		}
	})
}

// test_sync.test_31_queue and test_32_queue_for_removing: quick successive
// updates of one order from one POS (each with the revision of the previous
// answer) and a final removal are all accepted and relayed in order.
func TestQueuedUpdatesAndRemoval(t *testing.T) {
	t.Parallel()
	srv := newServer(t, apptest.Options{})
	pos := openPOS(t, srv, cfg("shop", 1, 1, 2))
	other := openPOS(t, srv, cfg("shop", 1, 2, 5))
	must := mustOK(t)

	o := pos.NewOrder(1)
	l := pos.AddLine(o, 50, 1, 4.8)
	for rev := int64(1); rev <= 5; rev++ {
		o.SetQty(l, float64(rev))
		update(t, pos, o, revAnswer(o.UID(), rev, 1, 1))
	}
	if diff := cmp.Diff(map[string]any{"order_ID": n(1)}, must(pos.RemoveOrder(o, true))); diff != "" {
		t.Fatalf("removal after queued updates (-want +got):\n%s", diff)
	}
	for rev := int64(1); rev <= 5; rev++ {
		got := expectMS(t, other, "update_order", o.UID())
		if r := apptest.Int(got.Data()["revision_ID"]); r != rev {
			t.Errorf("update %d relayed with revision_ID %d, want %d", rev, r, rev)
		}
	}
	rm := expectMS(t, other, "remove_order", o.UID())
	if r := apptest.Int(rm.Data()["revision_ID"]); r != 5 {
		t.Errorf("remove_order relayed with revision_ID %d, want 5", r)
	}
	expectNoGaps(t, pos, other)
}
