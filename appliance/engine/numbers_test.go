package engine

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"possync/storage/memstore"
)

// storedData returns the data of uid's stored copy, through a
// single-order sync_all of POS pos in run.
func storedData(t *testing.T, e *Engine, pos, run int64, uid string) map[string]any {
	t.Helper()
	msg := syncAllMsg(pos, run, true)
	msg["uid"] = uid
	orders := call(t, e, "shop", 1, 2, msg)["data"].(map[string]any)["orders"].([]any)
	if len(orders) != 1 {
		t.Fatalf("single-order sync_all of %s lists %d orders, want 1", uid, len(orders))
	}
	return orders[0].(map[string]any)["data"].(map[string]any)
}

// lastBroadcast returns the data of the newest notification on POS pos's
// channel.
func lastBroadcast(t *testing.T, e *Engine, pos int64) map[string]any {
	t.Helper()
	got := e.Poll(context.Background(), PollParams{Channels: []string{multiSessionChannel("shop", pos)}}, time.Second, time.Minute)
	if len(got) == 0 {
		t.Fatalf("POS %d has no notification", pos)
	}
	var m struct{ Data map[string]any }
	if err := json.Unmarshal(got[len(got)-1].AppendMessage(nil), &m); err != nil {
		t.Fatal(err)
	}
	return m.Data
}

// TestServerOwnsNumbers checks every path that writes an existing order:
// the number the server gave stays, in the answer, the broadcast and the
// stored copy, also after a restart (the number is then read back from the
// stored message).
func TestServerOwnsNumbers(t *testing.T) {
	store := memstore.New()
	e := openEngine(t, store, Options{})
	call(t, e, "shop", 1, 2, syncAllMsg(5, 1, true))
	call(t, e, "shop", 1, 2, syncAllMsg(6, 1, true))
	call(t, e, "shop", 1, 2, orderMsg(5, "00001-001-0001", 1, 1, 1, "a1"))
	if r := call(t, e, "shop", 1, 2, orderMsg(6, "00002-001-0001", 1, 1, 1, "b1")); num(r["order_ID"]) != 2 {
		t.Fatalf("second order = %v, want order_ID 2", r)
	}
	e.Close()
	e = openEngine(t, store, Options{}) // POS 6 lost the answer, and the server restarted

	steps := []struct {
		name     string
		msg      map[string]any
		wantRev  int64
		wantSeq  int64 // answer order_ID, broadcast and stored sequence_number
		wantNext int64 // the session's order_ID afterwards
	}{
		{"edit with the local number", orderMsg(6, "00002-001-0001", 1, 1, 1, "b2"), 2, 2, 2},
		{"edit with a too high number", orderMsg(6, "00002-001-0001", 9, 2, 1, "b3"), 3, 2, 2},
		{"edit with the other order's number", orderMsg(5, "00001-001-0001", 2, 1, 1, "a2"), 2, 1, 2},
	}
	for _, s := range steps {
		uid := s.msg["data"].(map[string]any)["uid"].(string)
		r := call(t, e, "shop", 1, 2, s.msg)
		if r["action"] != "update_revision_ID" || num(r["revision_ID"]) != s.wantRev || num(r["order_ID"]) != s.wantSeq || num(r["run_ID"]) != 1 {
			t.Errorf("%s: answer %v, want revision %d order_ID %d run_ID 1", s.name, r, s.wantRev, s.wantSeq)
		}
		if got := num(lastBroadcast(t, e, 5)["sequence_number"]); got != s.wantSeq {
			t.Errorf("%s: broadcast sequence_number %d, want %d", s.name, got, s.wantSeq)
		}
		if got := num(storedData(t, e, 5, 1, uid)["sequence_number"]); got != s.wantSeq {
			t.Errorf("%s: stored sequence_number %d, want %d", s.name, got, s.wantSeq)
		}
		full := call(t, e, "shop", 1, 2, syncAllMsg(5, 1, true))["data"].(map[string]any)
		if num(full["order_ID"]) != s.wantNext {
			t.Errorf("%s: session order_ID %v, want %d (no number spent)", s.name, full["order_ID"], s.wantNext)
		}
	}

	// The paid-offline path stores an order the server never saw: it gets
	// the next number like any new order, never the till's clashing one.
	rm := removeMsg(6, "00002-001-0002", 1, 1, "b4")
	od, _ := json.Marshal(map[string]any{"id": "00002-001-0002", "data": map[string]any{
		"uid": "00002-001-0002", "sequence_number": 2, "revision_ID": 1, "run_ID": 1, "lines": []any{}}})
	rm["data"].(map[string]any)["order_data"] = string(od)
	if r := call(t, e, "shop", 1, 2, rm); num(r["order_ID"]) != 3 {
		t.Errorf("paid-offline remove_order = %v, want order_ID 3", r)
	}
	if got := num(storedData(t, e, 5, 1, "00002-001-0002")["sequence_number"]); got != 3 {
		t.Errorf("paid-offline stored sequence_number %d, want 3", got)
	}
	// A nonce duplicate is still answered as one (§4.6): nothing is stored.
	if r := call(t, e, "shop", 1, 2, orderMsg(6, "00002-001-0001", 1, 1, 1, "b3")); r["action"] != "" || len(r) != 1 {
		t.Errorf("duplicate = %v, want {action:\"\"}", r)
	}
}
