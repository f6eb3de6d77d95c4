package engine

import (
	"testing"

	"possync/appliance"
	"possync/storage/memstore"
)

// A paid (removed) order is never rewritten, so its message and parsed
// lines leave memory once the removal is committed, as after a restart:
// a busy day's paid orders do not fill a 1 GB box. What it still answers
// comes from the store: a single-uid sync_all lists it with its data, and
// a later write to it is refused with state deleted.
func TestPaidOrderLeavesMemory(t *testing.T) {
	e := openEngine(t, memstore.New(), Options{})
	call(t, e, "shop", 1, 2, syncAllMsg(1, 1, true))
	line := []any{0, 0, map[string]any{"uid": "A-1", "product_id": 7, "qty": 2, "price_unit": 4.5, "note": "no onions"}}
	call(t, e, "shop", 1, 2, orderMsg(1, "A", 1, 1, 1, "n1", line))
	if r := call(t, e, "shop", 1, 2, orderMsg(1, "A", 1, 1, 1, "n2", line)); num(r["revision_ID"]) != 2 { // parsed lines kept for is_changed
		t.Fatalf("edit = %v", r)
	}
	if r := call(t, e, "shop", 1, 2, removeMsg(1, "A", 2, 1, "n3")); r["order_ID"] == nil {
		t.Fatalf("remove = %v", r)
	}

	e.mu.Lock()
	o := e.sessions[appliance.SessionKey{DB: "shop", ID: 1}].orders["A"]
	e.mu.Unlock()
	if o == nil || o.state != appliance.StateDeleted {
		t.Fatalf("order A in memory = %+v, want it deleted", o)
	}
	if o.msg != nil || o.lines != nil {
		t.Errorf("a paid order keeps %d bytes of message and %d parsed lines in memory", len(o.msg), len(o.lines))
	}
	if o.seq != 1 {
		t.Errorf("paid order's number in memory = %d, want 1", o.seq)
	}

	msg := syncAllMsg(1, 1, true)
	msg["uid"] = "A"
	r := call(t, e, "shop", 1, 2, msg)
	orders, _ := r["data"].(map[string]any)["orders"].([]any)
	if len(orders) != 1 {
		t.Fatalf("single-uid sync_all of the paid order listed %d orders: %v", len(orders), r)
	}
	data, _ := orders[0].(map[string]any)["data"].(map[string]any)
	lines, _ := data["lines"].([]any)
	if data["uid"] != "A" || len(lines) != 1 || num(data["sequence_number"]) != 1 {
		t.Errorf("paid order read back from the store = %v", data)
	}
	if r := call(t, e, "shop", 1, 2, orderMsg(1, "A", 1, 2, 1, "n4", line)); r["state"] != "deleted" {
		t.Errorf("write to the paid order = %v, want a revision_error with state deleted", r)
	}
}
