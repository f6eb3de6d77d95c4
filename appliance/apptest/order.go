package apptest

import (
	"encoding/json"
	"fmt"
	"time"
)

// Order is an order as the Odoo 12 POS exports it (export_as_JSON: Odoo core
// fields plus pos_multi_session's, §4.2, §11). Lines are [0,0,{...}] triples.
// Values are whatever encoding/json marshals; use json.Number to send a
// number with exact text.
type Order map[string]any

// OrderUID returns an Odoo 12 order uid: <session 5 digits>-<login 3>-<seq 4>.
func OrderUID(sessionID, loginNumber, seq int64) string {
	return fmt.Sprintf("%05d-%03d-%04d", sessionID, loginNumber, seq)
}

// MSInfo returns the ms_info.created/changed value of this terminal's user
// and POS.
func (t *Terminal) MSInfo() map[string]any {
	return map[string]any{
		"user": map[string]any{"id": t.cfg.UserID, "name": t.cfg.UserName},
		"pos":  map[string]any{"id": t.cfg.POSID, "name": t.cfg.Name},
	}
}

// NewOrder returns a new empty order with local sequence number seq, as the
// POS creates it: revision_ID 1, new_order true, the terminal's run_ID, no
// order_on_server key (§4.2).
func (t *Terminal) NewOrder(seq int64) Order {
	uid := OrderUID(t.cfg.SessionID, t.cfg.LoginNumber, seq)
	return Order{
		"name":               "Order " + uid,
		"amount_paid":        0,
		"amount_total":       0,
		"amount_tax":         0,
		"amount_return":      0,
		"lines":              []any{},
		"statement_ids":      []any{},
		"pos_session_id":     t.cfg.SessionID,
		"pricelist_id":       1,
		"partner_id":         false,
		"user_id":            t.cfg.UserID,
		"uid":                uid,
		"sequence_number":    seq,
		"creation_date":      time.Date(2019, 10, 3, 10, 15, 0, 0, time.UTC).Format("2006-01-02T15:04:05.000Z"),
		"fiscal_position_id": false,
		"ms_info":            map[string]any{"created": t.MSInfo(), "changed": t.MSInfo()},
		"revision_ID":        1,
		"new_order":          true,
		"run_ID":             t.RunID(),
	}
}

// AddLine appends an order line for productID and returns its uid
// (<order uid>-<line id>, ms.js L836).
func (t *Terminal) AddLine(o Order, productID int64, qty, price float64) string {
	var id int64 = 1
	for _, l := range o.Lines() {
		if n := Int(l["id"]); n >= id {
			id = n + 1
		}
	}
	uid := fmt.Sprintf("%s-%d", o.UID(), id)
	line := map[string]any{
		"qty":                 qty,
		"price_unit":          price,
		"price_subtotal":      qty * price,
		"price_subtotal_incl": qty * price,
		"discount":            0,
		"product_id":          productID,
		"tax_ids":             []any{[]any{6, false, []any{}}},
		"id":                  id,
		"pack_lot_ids":        []any{},
		"uid":                 uid,
		"ms_info":             map[string]any{"created": t.MSInfo()},
	}
	lines, _ := o["lines"].([]any)
	o["lines"] = append(lines, []any{0, 0, line})
	o.total()
	return uid
}

// SetQty changes the quantity of line uid and recomputes the totals.
func (o Order) SetQty(uid string, qty float64) {
	l := o.Line(uid)
	if l == nil {
		panic("apptest: no line " + uid)
	}
	l["qty"] = qty
	p, _ := l["price_unit"].(float64)
	l["price_subtotal"] = qty * p
	l["price_subtotal_incl"] = qty * p
	o.total()
}

// RemoveLine deletes line uid.
func (o Order) RemoveLine(uid string) {
	lines, _ := o["lines"].([]any)
	out := lines[:0:0]
	for _, l := range lines {
		if lineDict(l)["uid"] != uid {
			out = append(out, l)
		}
	}
	o["lines"] = out
	o.total()
}

func (o Order) total() {
	var sum float64
	for _, l := range o.Lines() {
		if v, ok := l["price_subtotal_incl"].(float64); ok {
			sum += v
		}
	}
	o["amount_total"] = sum
}

// OrderFromData returns the order a receiving POS rebuilds from the data of
// a received update_order or sync_all copy (init_from_JSON): a deep copy
// without the transport fields message_ID, nonce and pos_id and without the
// lines' is_changed flags.
func OrderFromData(data map[string]any) Order {
	o := Order(Clone(data))
	delete(o, "message_ID")
	delete(o, "nonce")
	delete(o, "pos_id")
	for _, l := range o.Lines() {
		delete(l, "is_changed")
	}
	return o
}

// Adopt applies the answer to an update_order of o the way ms.js does
// (§4.2 "Client handling of the answer", update_revision_id, ms.js
// L1093-1109, L801-824): for update_revision_ID of o's uid, a non-zero
// order_ID that differs from o's sequence_number renumbers o, and a higher
// revision_ID is adopted. Any other answer changes nothing.
func (o Order) Adopt(res map[string]any) {
	if res["action"] != "update_revision_ID" || res["uid"] != o.UID() {
		return
	}
	if id := Int(res["order_ID"]); id != 0 && id != Int(o["sequence_number"]) {
		o["sequence_number"] = id
	}
	if rev := Int(res["revision_ID"]); rev > o.Revision() {
		o["revision_ID"] = rev
	}
}

// UID returns the order's uid.
func (o Order) UID() string { s, _ := o["uid"].(string); return s }

// Revision returns the order's revision_ID.
func (o Order) Revision() int64 { return Int(o["revision_ID"]) }

// Lines returns the dicts of the order's [0,0,{...}] lines.
func (o Order) Lines() []map[string]any { return Lines(map[string]any(o)) }

// Line returns the dict of line uid, or nil.
func (o Order) Line(uid string) map[string]any {
	for _, l := range o.Lines() {
		if l["uid"] == uid {
			return l
		}
	}
	return nil
}

// Export returns the data of an update_order message for this order: a copy
// (deep, through JSON) so later local changes do not alter a message in
// flight.
func (o Order) Export() map[string]any { return Clone(map[string]any(o)) }

// Clone deep-copies a JSON value through encoding/json (numbers become
// json.Number).
func Clone(v map[string]any) map[string]any {
	b, err := json.Marshal(v)
	if err != nil {
		panic("apptest: clone: " + err.Error())
	}
	var out map[string]any
	if err := DecodeJSON(b, &out); err != nil {
		panic("apptest: clone: " + err.Error())
	}
	return out
}

// Lines returns the line dicts of an order's data (lines as [0,0,{...}]).
func Lines(data map[string]any) []map[string]any {
	lines, _ := data["lines"].([]any)
	out := make([]map[string]any, 0, len(lines))
	for _, l := range lines {
		if d := lineDict(l); d != nil {
			out = append(out, d)
		}
	}
	return out
}

func lineDict(l any) map[string]any {
	triple, ok := l.([]any)
	if !ok || len(triple) != 3 {
		return nil
	}
	d, _ := triple[2].(map[string]any)
	return d
}
