package apptest_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"possync/appliance/apptest"
)

// fakeSyncServer plays a Sync Server for one till: the immediate sync_all
// lists order "00009-001-0001"; the first poll answers with the bus
// messages of script; later polls are held; remove_order calls are
// recorded.
func fakeSyncServer(t *testing.T, script []map[string]any) (url string, removes func() []string, lasts func() []int64) {
	t.Helper()
	var (
		mu       sync.Mutex
		rm       []string
		ls       []int64
		answered bool
	)
	order := map[string]any{"action": "update_order", "data": map[string]any{"uid": "00009-001-0001", "sequence_number": 1, "revision_ID": 1, "lines": []any{}}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			ID     int64 `json:"id"`
			Params struct {
				Last    int64 `json:"last"`
				Message struct {
					Action string         `json:"action"`
					Data   map[string]any `json:"data"`
					Top    bool           `json:"immediate_rerendering"`
				} `json:"message"`
			} `json:"params"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		w.Header().Set("Access-Control-Allow-Origin", "*")
		var result any = map[string]any{}
		switch r.URL.Path {
		case apptest.RoutePoll:
			mu.Lock()
			ls = append(ls, req.Params.Last)
			first := !answered
			answered = true
			mu.Unlock()
			if !first {
				<-r.Context().Done()
				return
			}
			result = script
		case apptest.RouteUpdate:
			m := req.Params.Message
			switch {
			case m.Action == "sync_all" && m.Top:
				result = map[string]any{"action": "sync_all", "data": map[string]any{"orders": []any{order}, "message_ID": 1, "order_ID": 1}}
			case m.Action == "remove_order":
				mu.Lock()
				rm = append(rm, m.Data["uid"].(string))
				mu.Unlock()
			}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"jsonrpc": "2.0", "id": req.ID, "result": result})
	}))
	t.Cleanup(srv.Close)
	return srv.URL,
		func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(rm) },
		func() []int64 { mu.Lock(); defer mu.Unlock(); return slices.Clone(ls) }
}

// The till reproduces what makes a replayed old sync_all dangerous: a full
// sync_all that does not list an order the till got from the server
// destroys it and sends remove_order (ms.js destroy_removed_orders, §4.3).
// It also starts polling from the configured cursor and keeps max(ids).
func TestTillDestroysOrdersMissingFromFullSyncAll(t *testing.T) {
	ch := apptest.Channel("shop", "pos.multi_session", 1)
	script := []map[string]any{
		{"id": 7, "channel": ch, "message": map[string]any{"action": "sync_all", "session_id": 300, "login_number": 1,
			"data": map[string]any{"orders": []any{}, "message_ID": 2, "order_ID": 0}}},
	}
	url, removes, lasts := fakeSyncServer(t, script)
	till := apptest.NewTill(t, url, apptest.TerminalConfig{DB: "shop", MultiSessionID: 1, POSID: 1, SessionID: 9, LoginNumber: 1, RunID: 1, Cursor: 1000})
	if err := till.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); len(removes()) == 0; {
		if time.Now().After(deadline) {
			t.Fatalf("no remove_order sent; till holds %v", till.OrderUIDs())
		}
		time.Sleep(2 * time.Millisecond)
	}
	if got := removes(); !slices.Equal(got, []string{"00009-001-0001"}) {
		t.Errorf("remove_order sent for %v, want [00009-001-0001]", got)
	}
	if till.HasOrder("00009-001-0001") {
		t.Errorf("order still in the till's list after a full sync_all without it")
	}
	for deadline := time.Now().Add(5 * time.Second); len(lasts()) < 2; {
		if time.Now().After(deadline) {
			t.Fatalf("second poll never came")
		}
		time.Sleep(2 * time.Millisecond)
	}
	if got := lasts()[:2]; !slices.Equal(got, []int64{1000, 1000}) {
		t.Errorf("polls sent last = %v, want [1000 1000] (start cursor, then max(1000, 7))", got)
	}
}

// A copy of an order the till already has (a broadcast update_order, a
// sync_all) gives it the copy's revision and lines but never its number:
// ms_update_order applies apply_ms_data (revision_ID, ms_info, fiscal
// position) and the lines, and only the answer to the till's own write
// renumbers it (update_revision_id, protocol.md §4.2). A till that took
// numbers from copies would hide a server that answers the wrong order_ID.
func TestTillTakesNumbersOnlyFromAnswers(t *testing.T) {
	ch := apptest.Channel("shop", "pos.multi_session", 1)
	line := []any{0, 0, map[string]any{"uid": "00009-001-0001-1", "qty": 2, "product_id": 50}}
	script := []map[string]any{
		{"id": 7, "channel": ch, "message": map[string]any{"action": "update_order", "session_id": 300, "login_number": 1,
			"data": map[string]any{"uid": "00009-001-0001", "sequence_number": 5, "revision_ID": 2, "message_ID": 2, "lines": []any{line}}}},
		{"id": 8, "channel": ch, "message": map[string]any{"action": "sync_all", "session_id": 300, "login_number": 1,
			"data": map[string]any{"message_ID": 3, "order_ID": 6, "orders": []any{map[string]any{"action": "update_order",
				"data": map[string]any{"uid": "00009-001-0001", "sequence_number": 6, "revision_ID": 3, "lines": []any{line}}}}}}},
	}
	url, _, _ := fakeSyncServer(t, script)
	till := apptest.NewTill(t, url, apptest.TerminalConfig{DB: "shop", MultiSessionID: 1, POSID: 1, SessionID: 9, LoginNumber: 1, RunID: 1})
	if err := till.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); till.SyncAllsApplied() == 0; {
		if time.Now().After(deadline) {
			t.Fatalf("the pushed sync_all was not applied")
		}
		time.Sleep(2 * time.Millisecond)
	}
	o := till.Order("00009-001-0001")
	if o == nil {
		t.Fatalf("order 00009-001-0001 missing; till holds %v", till.OrderUIDs())
	}
	if got := apptest.Int(o["sequence_number"]); got != 1 {
		t.Errorf("sequence_number %d after copies numbered 5 and 6, want 1 (the number the till created it with)", got)
	}
	if got := o.Revision(); got != 3 {
		t.Errorf("revision_ID %d, want 3 (from the last copy)", got)
	}
	if got := len(o.Lines()); got != 1 {
		t.Errorf("%d lines, want the copy's 1", got)
	}
}
