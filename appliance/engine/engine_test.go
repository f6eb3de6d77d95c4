package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"possync/appliance"
	"possync/storage/memstore"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func openEngine(t testing.TB, store appliance.Store, opts Options) *Engine {
	t.Helper()
	opts.Logger = quiet
	if opts.PurgeInterval == 0 {
		opts.PurgeInterval = -1
	}
	e := New(store, opts)
	if err := e.Open(context.Background()); err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// call sends one update message and decodes the result.
func call(t testing.TB, e *Engine, db string, ms, user int64, msg map[string]any) map[string]any {
	t.Helper()
	raw, err := e.Update(context.Background(), mustJSON(t, map[string]any{"multi_session_id": ms, "dbname": db, "user_ID": user, "message": msg}))
	if err != nil {
		t.Fatalf("Update(%v) error: %v", msg["action"], err)
	}
	var out any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("result %s is not JSON: %v", raw, err)
	}
	m, _ := out.(map[string]any)
	return m
}

func mustJSON(t testing.TB, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func syncAllMsg(pos int64, run int64, immediate bool) map[string]any {
	return map[string]any{"action": "sync_all", "session_id": pos * 10, "login_number": 1, "immediate_rerendering": immediate,
		"data": map[string]any{"run_ID": run, "pos_id": pos, "nonce": "s"}}
}

func orderMsg(pos int64, uid string, seq, rev, run int64, nonce string, lines ...any) map[string]any {
	if lines == nil {
		lines = []any{}
	}
	return map[string]any{"action": "update_order", "session_id": pos * 10, "login_number": 1,
		"data": map[string]any{"uid": uid, "sequence_number": seq, "revision_ID": rev, "run_ID": run, "pos_id": pos, "nonce": nonce, "lines": lines}}
}

func removeMsg(pos int64, uid string, rev, run int64, nonce string) map[string]any {
	return map[string]any{"action": "remove_order", "session_id": pos * 10, "login_number": 1,
		"data": map[string]any{"uid": uid, "revision_ID": rev, "finalized": true, "run_ID": run, "pos_id": pos, "nonce": nonce}}
}

func num(v any) int64 {
	f, _ := v.(float64)
	return int64(f)
}

func TestUpdateOrderProtocol(t *testing.T) {
	e := openEngine(t, memstore.New(), Options{})
	call(t, e, "shop", 1, 2, syncAllMsg(1, 1, true))
	call(t, e, "shop", 1, 2, syncAllMsg(2, 1, true))

	// Shared numbering: both POSes propose 1; the second gets 2.
	r := call(t, e, "shop", 1, 2, orderMsg(1, "A", 1, 1, 1, "n1"))
	if r["action"] != "update_revision_ID" || num(r["order_ID"]) != 1 || num(r["revision_ID"]) != 1 || r["uid"] != "A" {
		t.Fatalf("first order = %v", r)
	}
	r = call(t, e, "shop", 1, 2, orderMsg(2, "B", 1, 1, 1, "n2"))
	if num(r["order_ID"]) != 2 {
		t.Fatalf("second order order_ID = %v, want 2", r["order_ID"])
	}
	// Update with the current revision: accepted, revision 2.
	r = call(t, e, "shop", 1, 2, orderMsg(1, "A", 1, 1, 1, "n3"))
	if num(r["revision_ID"]) != 2 {
		t.Fatalf("update revision = %v, want 2", r)
	}
	// Re-delivered request (same nonce, now stale revision): duplicate.
	r = call(t, e, "shop", 1, 2, orderMsg(1, "A", 1, 1, 1, "n3"))
	if r["action"] != "" || len(r) != 1 {
		t.Fatalf("duplicate = %v, want {action:\"\"}", r)
	}
	// Stale revision with a new nonce: conflict.
	r = call(t, e, "shop", 1, 2, orderMsg(2, "A", 1, 1, 1, "n4"))
	if r["action"] != "revision_error" || r["order_uid"] != "A" || r["state"] != "draft" {
		t.Fatalf("stale = %v", r)
	}
	// Unknown order with a revision other than 1: conflict, state false.
	r = call(t, e, "shop", 1, 2, orderMsg(2, "C", 9, 3, 1, "n5"))
	if r["action"] != "revision_error" || r["state"] != false {
		t.Fatalf("unknown stale = %v", r)
	}
	// Remove, then an update of the deleted order is refused with state deleted.
	r = call(t, e, "shop", 1, 2, removeMsg(1, "A", 2, 1, "n6"))
	if num(r["order_ID"]) != 2 {
		t.Fatalf("remove = %v, want order_ID 2", r)
	}
	r = call(t, e, "shop", 1, 2, orderMsg(1, "A", 1, 2, 1, "n7"))
	if r["action"] != "revision_error" || r["state"] != "deleted" {
		t.Fatalf("update of deleted = %v", r)
	}
	st := e.Stats()
	if st.Accepted != 3 || st.Duplicates != 1 || st.RevisionErrors != 3 {
		t.Errorf("stats = accepted %d dup %d rev %d, want 3 1 3", st.Accepted, st.Duplicates, st.RevisionErrors)
	}
}

func TestBroadcastMessageIDsAndTemplate(t *testing.T) {
	e := openEngine(t, memstore.New(), Options{})
	call(t, e, "shop", 1, 2, syncAllMsg(1, 1, true)) // POS 1 message_ID 2
	call(t, e, "shop", 1, 2, syncAllMsg(2, 1, true)) // POS 2 message_ID 2
	call(t, e, "shop", 1, 2, orderMsg(1, "A", 1, 1, 1, "n1", []any{0, 0, map[string]any{"uid": "l1", "qty": 1}}))
	call(t, e, "shop", 1, 2, orderMsg(1, "A", 1, 1, 1, "n2", []any{0, 0, map[string]any{"uid": "l1", "qty": 2}}, []any{0, 0, map[string]any{"uid": "l2"}}))
	for pos := int64(1); pos <= 2; pos++ {
		ch := multiSessionChannel("shop", pos)
		got := e.Poll(context.Background(), PollParams{Channels: []string{ch}}, time.Second, time.Minute)
		if len(got) != 2 {
			t.Fatalf("POS %d got %d notifications, want 2", pos, len(got))
		}
		for i, n := range got {
			var m struct {
				Action string
				Data   struct {
					MessageID  int64 `json:"message_ID"`
					RevisionID int64 `json:"revision_ID"`
					Lines      [][]json.RawMessage
				}
			}
			if err := json.Unmarshal(n.AppendMessage(nil), &m); err != nil {
				t.Fatalf("message %s: %v", n.AppendMessage(nil), err)
			}
			if m.Action != "update_order" || m.Data.MessageID != int64(3+i) || m.Data.RevisionID != int64(1+i) {
				t.Errorf("POS %d message %d = %+v, want message_ID %d revision %d", pos, i, m, 3+i, 1+i)
			}
			if i == 1 {
				if len(m.Data.Lines) != 2 {
					t.Fatalf("lines = %d", len(m.Data.Lines))
				}
				var l1, l2 map[string]any
				json.Unmarshal(m.Data.Lines[0][2], &l1)
				json.Unmarshal(m.Data.Lines[1][2], &l2)
				if l1["is_changed"] != true || l2["is_changed"] != nil {
					t.Errorf("is_changed: changed line %v, new line %v; want true and absent", l1, l2)
				}
			}
		}
	}
}

func TestRunChangeResetsNumbering(t *testing.T) {
	e := openEngine(t, memstore.New(), Options{})
	call(t, e, "shop", 1, 2, syncAllMsg(1, 1, true))
	call(t, e, "shop", 1, 2, orderMsg(1, "A", 1, 1, 1, "n1"))
	call(t, e, "shop", 1, 2, orderMsg(1, "B", 2, 1, 1, "n2"))
	r := call(t, e, "shop", 1, 2, syncAllMsg(1, 2, true))
	data := r["data"].(map[string]any)
	if n := len(data["orders"].([]any)); n != 0 || num(data["order_ID"]) != 0 {
		t.Fatalf("sync_all of run 2 = %d orders, order_ID %v; want 0, 0", n, data["order_ID"])
	}
	r = call(t, e, "shop", 1, 2, orderMsg(1, "C", 7, 1, 2, "n3"))
	if num(r["order_ID"]) != 1 {
		t.Fatalf("first order of run 2 got number %v, want 1", r["order_ID"])
	}
	// An accepted update of an unpaid order makes it draft again; sent in
	// run 2, it moves into run 2 and gets that run's next number (its run-1
	// number 1 is C's now).
	r = call(t, e, "shop", 1, 2, orderMsg(1, "A", 1, 1, 2, "n4"))
	if r["action"] != "update_revision_ID" || num(r["order_ID"]) != 2 || num(r["run_ID"]) != 2 {
		t.Fatalf("update of unpaid order = %v, want order_ID 2 in run 2", r)
	}
	r = call(t, e, "shop", 1, 2, syncAllMsg(1, 2, true))
	if n := len(r["data"].(map[string]any)["orders"].([]any)); n != 2 {
		t.Fatalf("sync_all after revival = %d orders, want 2 (C and A)", n)
	}
}

// failingStore wraps a store and fails commits while fail is set.
type failingStore struct {
	appliance.Store
	mu   sync.Mutex
	fail bool
}

func (f *failingStore) Commit(ctx context.Context, b *appliance.Batch) error {
	f.mu.Lock()
	fail := f.fail
	f.mu.Unlock()
	if fail {
		return &appliance.Error{Code: appliance.EUNAVAILABLE, Message: "store cannot take the write: disk full"}
	}
	return f.Store.Commit(ctx, b)
}

func TestStoreFailureAppliesNothing(t *testing.T) {
	fs := &failingStore{Store: memstore.New()}
	e := openEngine(t, fs, Options{})
	call(t, e, "shop", 1, 2, syncAllMsg(1, 1, true))
	call(t, e, "shop", 1, 2, orderMsg(1, "A", 1, 1, 1, "n1"))
	newest := e.Bus().Newest()

	fs.fail = true
	_, err := e.Update(context.Background(), mustJSON(t, map[string]any{"multi_session_id": 1, "dbname": "shop", "user_ID": 2,
		"message": orderMsg(1, "A", 1, 1, 1, "n2")}))
	if appliance.ErrorCode(err) != appliance.EUNAVAILABLE {
		t.Fatalf("Update with failing store = %v, want EUNAVAILABLE", err)
	}
	if e.Bus().Newest() != newest {
		t.Errorf("bus advanced to %d after a failed commit", e.Bus().Newest())
	}
	fs.fail = false
	// The same update (revision 1) is still the right one: nothing was applied.
	r := call(t, e, "shop", 1, 2, orderMsg(1, "A", 1, 1, 1, "n3"))
	if num(r["revision_ID"]) != 2 {
		t.Fatalf("after recovery = %v, want revision 2", r)
	}
	got := e.Poll(context.Background(), PollParams{Channels: []string{multiSessionChannel("shop", 1)}, Last: newest}, time.Second, time.Minute)
	if len(got) != 1 || got[0].ID != newest+2 {
		// the failed commit's reserved id (newest+1) is skipped, never reused
		t.Fatalf("after recovery poll = %+v, want one notification with id %d", got, newest+2)
	}
}

func TestRestartContinues(t *testing.T) {
	store := memstore.New()
	e := openEngine(t, store, Options{})
	call(t, e, "shop", 1, 2, syncAllMsg(1, 1, true))
	call(t, e, "shop", 1, 2, orderMsg(1, "A", 1, 1, 1, "n1"))
	newest := e.Bus().Newest()
	e.Close()

	e2 := openEngine(t, store, Options{})
	r := call(t, e2, "shop", 1, 2, orderMsg(1, "B", 1, 1, 1, "n2"))
	if num(r["order_ID"]) != 2 {
		t.Fatalf("numbering after restart = %v, want 2", r["order_ID"])
	}
	r = call(t, e2, "shop", 1, 2, syncAllMsg(1, 1, true))
	data := r["data"].(map[string]any)
	if num(data["message_ID"]) != 5 || len(data["orders"].([]any)) != 2 {
		t.Fatalf("sync_all after restart = %v, want message_ID 5 and 2 orders", data)
	}
	if e2.Bus().Newest() <= newest {
		t.Errorf("bus id %d did not continue above %d", e2.Bus().Newest(), newest)
	}
}

func TestPOSMovesBetweenSessions(t *testing.T) {
	e := openEngine(t, memstore.New(), Options{})
	call(t, e, "shop", 1, 2, syncAllMsg(5, 1, true)) // POS 5 in ms 1, message_ID 2
	call(t, e, "shop", 1, 2, orderMsg(5, "A", 1, 1, 1, "n1"))
	r := call(t, e, "shop", 2, 2, syncAllMsg(5, 1, true)) // moves to ms 2
	if got := num(r["data"].(map[string]any)["message_ID"]); got != 4 {
		t.Fatalf("moved POS message_ID = %d, want 4 (counter kept)", got)
	}
	before := e.Bus().Newest()
	call(t, e, "shop", 1, 2, orderMsg(5, "B", 2, 1, 1, "n2"))
	if e.Bus().Newest() != before {
		t.Errorf("ms 1 still broadcast to the moved POS")
	}
}

func TestConcurrentSessionsKeepCountersContiguous(t *testing.T) {
	e := openEngine(t, memstore.New(), Options{})
	const sessions, poses, updates = 3, 4, 30
	for ms := int64(1); ms <= sessions; ms++ {
		for p := int64(1); p <= poses; p++ {
			call(t, e, "shop", ms, 2, syncAllMsg(ms*100+p, 1, true))
		}
	}
	var wg sync.WaitGroup
	for ms := int64(1); ms <= sessions; ms++ {
		for p := int64(1); p <= poses; p++ {
			wg.Add(1)
			go func(ms, pos int64) {
				defer wg.Done()
				uid := fmt.Sprintf("%d-%d", ms, pos)
				for i := int64(0); i < updates; i++ {
					rev := i
					if rev == 0 {
						rev = 1
					}
					call(t, e, "shop", ms, 2, orderMsg(pos, uid, 1, rev, 1, fmt.Sprint("n", i)))
				}
			}(ms, ms*100+p)
		}
	}
	wg.Wait()
	for ms := int64(1); ms <= sessions; ms++ {
		for p := int64(1); p <= poses; p++ {
			pos := ms*100 + p
			got := e.Poll(context.Background(), PollParams{Channels: []string{multiSessionChannel("shop", pos)}}, time.Second, time.Hour)
			if len(got) != poses*updates {
				t.Fatalf("POS %d got %d notifications, want %d", pos, len(got), poses*updates)
			}
			for i, n := range got {
				var m struct {
					Data struct {
						MessageID int64 `json:"message_ID"`
					}
				}
				json.Unmarshal(n.AppendMessage(nil), &m)
				if m.Data.MessageID != int64(3+i) {
					t.Fatalf("POS %d notification %d has message_ID %d, want %d", pos, i, m.Data.MessageID, 3+i)
				}
				if i > 0 && n.ID <= got[i-1].ID {
					t.Fatalf("ids not increasing: %d after %d", n.ID, got[i-1].ID)
				}
			}
		}
	}
}

func TestRetentionPurgesOldRunOrders(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	store := memstore.New()
	e := openEngine(t, store, Options{Now: clock, OrderRetention: time.Hour, BusRetention: 10 * time.Minute})
	call(t, e, "shop", 1, 2, syncAllMsg(1, 1, true))
	call(t, e, "shop", 1, 2, orderMsg(1, "paid", 1, 1, 1, "n1"))
	call(t, e, "shop", 1, 2, removeMsg(1, "paid", 1, 1, "n2"))
	call(t, e, "shop", 1, 2, orderMsg(1, "open", 2, 1, 1, "n3"))
	call(t, e, "shop", 1, 2, syncAllMsg(1, 2, true)) // run 2: "open" becomes unpaid
	call(t, e, "shop", 1, 2, orderMsg(1, "new", 1, 1, 2, "n4"))

	advance(30 * time.Minute)
	if err := e.Purge(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := e.Stats(); st.Orders != 3 {
		t.Fatalf("orders after 30m = %d, want 3 (retention 1h)", st.Orders)
	}
	advance(time.Hour)
	if err := e.Purge(context.Background()); err != nil {
		t.Fatal(err)
	}
	snap, _ := store.Load(context.Background())
	if len(snap.Orders) != 1 || snap.Orders[0].Key.UID != "new" {
		t.Fatalf("stored orders after retention = %+v, want only the current run's draft", snap.Orders)
	}
	if len(snap.Broadcasts) != 0 {
		t.Errorf("broadcasts after bus retention = %d, want 0", len(snap.Broadcasts))
	}
	if snap.LastBusID == 0 {
		t.Errorf("LastBusID lost by purge")
	}
}

func TestInvalidRequests(t *testing.T) {
	e := openEngine(t, memstore.New(), Options{})
	tests := []struct {
		name   string
		params string
		want   string
	}{
		{"not object", `[1]`, "params must be a JSON object, got array"},
		{"no ms", `{"dbname":"a","user_ID":1,"message":{}}`, "params.multi_session_id is missing"},
		{"ms string", `{"multi_session_id":"x","dbname":"a","user_ID":1,"message":{}}`, "params.multi_session_id must be an integer"},
		{"db number", `{"multi_session_id":1,"dbname":5,"user_ID":1,"message":{}}`, "params.dbname must be a string, got number"},
		{"db too long", `{"multi_session_id":1,"dbname":"` + strings.Repeat("d", 64) + `","user_ID":1,"message":{"action":"sync_all","data":{"run_ID":1,"pos_id":1}}}`,
			"params.dbname is 64 bytes long; a database name has at most 63"},
		{"uid too long", `{"multi_session_id":1,"dbname":"a","user_ID":1,"message":{"action":"update_order","data":{"run_ID":1,"uid":"` + strings.Repeat("u", 257) +
			`","revision_ID":1,"sequence_number":1,"nonce":"n"}}}`, "params.message.data.uid is 257 bytes long; an order uid has at most 256"},
		{"remove uid too long", `{"multi_session_id":1,"dbname":"a","user_ID":1,"message":{"action":"remove_order","data":{"run_ID":1,"uid":"` + strings.Repeat("u", 300) +
			`","revision_ID":1,"nonce":"n"}}}`, "params.message.data.uid is 300 bytes long"},
		{"message array", `{"multi_session_id":1,"dbname":"a","user_ID":1,"message":[]}`, "params.message must be a JSON object, got array"},
		{"no run", `{"multi_session_id":1,"dbname":"a","user_ID":1,"message":{"action":"x","data":{}}}`, "params.message.data.run_ID is missing"},
		{"rev object", `{"multi_session_id":1,"dbname":"a","user_ID":1,"message":{"action":"update_order","data":{"run_ID":1,"uid":"u","revision_ID":{},"sequence_number":1,"nonce":"n"}}}`, "params.message.data.revision_ID must be an integer, got object"},
		{"sync no pos", `{"multi_session_id":1,"dbname":"a","user_ID":1,"message":{"action":"sync_all","data":{"run_ID":1}}}`, "params.message.data.pos_id is missing"},
		{"bad order_data", `{"multi_session_id":1,"dbname":"a","user_ID":1,"message":{"action":"remove_order","data":{"run_ID":1,"uid":"u","revision_ID":1,"nonce":"n","order_data":"{nope"}}}`, "order_data is not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.Update(context.Background(), json.RawMessage(tt.params))
			var ae *appliance.Error
			if !errors.As(err, &ae) || ae.Code != appliance.EINVALID {
				t.Fatalf("Update(%s) = %v, want EINVALID", tt.params, err)
			}
			if !contains(ae.Message, tt.want) {
				t.Errorf("Update(%s) message = %q, want it to contain %q", tt.params, ae.Message, tt.want)
			}
		})
	}
	ping := `{"message":"PING","pos_id":1,"db_name":"` + strings.Repeat("d", 64) + `"}`
	if _, err := e.Ping(context.Background(), json.RawMessage(ping)); appliance.ErrorCode(err) != appliance.EINVALID ||
		!contains(err.Error(), "params.db_name is 64 bytes long") {
		t.Errorf("Ping with a 64-byte db_name = %v, want EINVALID naming params.db_name", err)
	}
	if st := e.Stats(); st.Sessions != 0 {
		t.Errorf("invalid requests created %d sessions", st.Sessions)
	}
	if lim := e.Limits(); lim.Databases != 0 {
		t.Errorf("invalid requests are tracked as %d databases", lim.Databases)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
