package httpapi_test

// Decision 1 (two databases never see each other), §4.5 (other actions are
// relayed) and §7 (a trailing slash in the Sync Server field gives "//").

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"possync/appliance/apptest"
)

// The same multi_session_id, POS ids, session ids and order uids in db "a"
// and db "b" (e.g. a duplicated test database) never meet (§9.1-2, -3).
func TestTwoDBsIsolated(t *testing.T) {
	t.Parallel()
	srv := newServer(t, apptest.Options{})
	dbs := []string{"a", "b"}
	writer, reader := map[string]*apptest.Terminal{}, map[string]*apptest.Terminal{}
	for _, db := range dbs {
		writer[db] = openPOS(t, srv, cfg(db, 1, 1, 2))
		reader[db] = openPOS(t, srv, cfg(db, 1, 2, 5))
	}
	orders := map[string]apptest.Order{}
	product := map[string]int64{"a": 50, "b": 60}
	for rev := int64(1); rev <= 2; rev++ {
		for _, db := range dbs {
			o := orders[db]
			if o == nil {
				o = writer[db].NewOrder(1)
				orders[db] = o
			}
			writer[db].AddLine(o, product[db], float64(rev), 1)
			update(t, writer[db], o, revAnswer(o.UID(), rev, 1, 1)) // same uid, own numbering and revisions
		}
	}
	if orders["a"].UID() != orders["b"].UID() {
		t.Fatalf("test setup: uids %s and %s differ", orders["a"].UID(), orders["b"].UID())
	}
	for _, db := range dbs {
		for _, term := range []*apptest.Terminal{writer[db], reader[db]} {
			for rev := int64(1); rev <= 2; rev++ {
				got := expectMS(t, term, "update_order", orders[db].UID())
				for _, l := range apptest.Lines(got.Data()) {
					if apptest.Int(l["product_id"]) != product[db] {
						t.Errorf("%v received a line of product %v, want only %d", term, l["product_id"], product[db])
					}
				}
			}
		}
		synced := syncOrders(t, mustOK(t)(reader[db].SyncAll(true, "")))
		want := normalize(orders[db].Export())
		delete(want, "order_on_server")
		got := normalize(synced[orders[db].UID()])
		delete(got, "pos_id")
		delete(got, "order_on_server")
		if diff := cmp.Diff(want, got); diff != "" || len(synced) != 1 {
			t.Errorf("db %s: sync_all lists %d orders; its order (-want +got):\n%s", db, len(synced), diff)
		}
	}
	if _, err := writer["a"].Ping(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := writer["a"].WaitFor(wait, "PONG", apptest.Notification.IsPong); err != nil {
		t.Fatal(err)
	}
	for _, db := range dbs {
		expectQuiet(t, writer["b"])
		expectQuiet(t, reader[db])
	}
	if ma, mb := reader["a"].MessageID(), reader["b"].MessageID(); ma != mb {
		t.Errorf("message_ID of the symmetric POSes: db a %d, db b %d; want equal (independent counters)", ma, mb)
	}
	expectNoGaps(t, writer["a"], writer["b"], reader["a"], reader["b"])
}

// §4.5: any other action is broadcast unchanged (plus message_ID) to every
// POS of the multi-session and answered 1.
func TestUnknownActionRelayed(t *testing.T) {
	t.Parallel()
	srv := newServer(t, apptest.Options{})
	a := openPOS(t, srv, cfg("shop", 1, 1, 2))
	b := openPOS(t, srv, cfg("shop", 1, 2, 5))
	data := map[string]any{"run_ID": 1, "nonce": "relay1", "payload": map[string]any{"k": []any{1, "ü", nil, false}}}
	res, err := a.Send("x_custom_action", data, map[string]any{"x_top": true})
	if err != nil {
		t.Fatal(err)
	}
	if res != json.Number("1") {
		t.Errorf("unknown action result = %v, want 1", res)
	}
	for _, term := range []*apptest.Terminal{a, b} {
		got := expectMS(t, term, "x_custom_action", "")
		want := apptest.Clone(data)
		want["pos_id"] = n(1)
		want["message_ID"] = got.Data()["message_ID"]
		if diff := cmp.Diff(want, got.Data()); diff != "" {
			t.Errorf("%v: relayed data (-want +got):\n%s", term, diff)
		}
		if got.Msg()["x_top"] != true {
			t.Errorf("%v: relayed message lost x_top: %v", term, got.Msg())
		}
	}
	expectNoGaps(t, a, b) // message_ID counted like any broadcast
}

// §7: the client appends the routes to the configured URL verbatim, so a
// trailing slash produces "//pos_multi_session_sync/update" etc.
func TestTrailingSlashURL(t *testing.T) {
	t.Parallel()
	srv := newServer(t, apptest.Options{})
	a := openPOS(t, srv, apptest.TerminalConfig{DB: "shop", MultiSessionID: 1, POSID: 1, UserID: 2, SessionID: 101, LoginNumber: 1, RunID: 1})
	a.SetURL(srv.URL + "/")
	b := apptest.NewTerminal(t, srv.URL+"/", cfg("shop", 1, 2, 5))
	if _, err := b.SyncAll(true, ""); err != nil {
		t.Fatalf("sync_all via //: %v", err)
	}
	b.StartPolling()
	o := b.NewOrder(1)
	update(t, b, o, revAnswer(o.UID(), 1, 1, 1))
	expectMS(t, b, "update_order", o.UID())
	expectMS(t, a, "update_order", o.UID())
	if _, err := b.Barrier(wait); err != nil {
		t.Errorf("PING/PONG via //: %v", err)
	}
}
