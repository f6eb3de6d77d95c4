package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"possync/storage/memstore"
)

// BenchmarkUpdateOrder measures the engine's update path (parse, revision
// check, is_changed marking, template, commit to an in-memory store,
// publish to 3 POS channels) without HTTP or disk. The end-to-end figure
// over HTTP with Badger is BenchmarkUpdateOrderHTTP in appliance/httpapi.
func BenchmarkUpdateOrder(b *testing.B) {
	e := openEngine(b, memstore.New(), Options{})
	for pos := int64(1); pos <= 3; pos++ {
		call(b, e, "shop", 1, 2, syncAllMsg(pos, 1, true))
	}
	lines := make([]any, 10)
	for i := range lines {
		lines[i] = []any{0, 0, map[string]any{"uid": fmt.Sprint("l", i), "qty": 1, "price_unit": 4.8, "product_id": 50 + i,
			"tax_ids": []any{[]any{6, false, []any{}}}, "ms_info": map[string]any{"created": map[string]any{"user": map[string]any{"id": 2, "name": "Mitchell Admin"}}}}}
	}
	call(b, e, "shop", 1, 2, orderMsg(1, "A", 1, 1, 1, "n0", lines...))
	rev := int64(1)
	b.ReportAllocs()
	for b.Loop() {
		lines[0].([]any)[2].(map[string]any)["qty"] = rev
		params := mustJSON(b, map[string]any{"multi_session_id": 1, "dbname": "shop", "user_ID": 2, "message": orderMsg(1, "A", 1, rev, 1, fmt.Sprint("n", rev), lines...)})
		raw, err := e.Update(context.Background(), params)
		if err != nil {
			b.Fatal(err)
		}
		var r struct {
			Revision int64 `json:"revision_ID"`
		}
		if err := json.Unmarshal(raw, &r); err != nil || r.Revision != rev+1 {
			b.Fatalf("answer %s", raw)
		}
		rev = r.Revision
	}
}

// BenchmarkParseUpdate measures the parsing part of an update_order of a
// ~6 KiB order with 20 lines: parseRequest (params, message, data) and
// markChanged against the previous lines (split once, by checkLines), without the
// commit or the broadcast.
func BenchmarkParseUpdate(b *testing.B) {
	lines := make([]any, 20)
	for i := range lines {
		lines[i] = []any{0, 0, map[string]any{"uid": fmt.Sprint("00001-001-0001-", i), "qty": 1, "price_unit": 4.8, "price_subtotal": 4.8,
			"price_subtotal_incl": 4.8, "discount": 0, "product_id": 50 + i, "id": i + 1, "pack_lot_ids": []any{}, "note": "",
			"tax_ids": []any{[]any{6, false, []any{}}}, "ms_info": map[string]any{"created": map[string]any{"user": map[string]any{"id": 2, "name": "Mitchell Admin"}, "pos": map[string]any{"id": 1, "name": "Shop 1"}}}}}
	}
	params := mustJSON(b, map[string]any{"multi_session_id": 1, "dbname": "shop", "user_ID": 2, "message": orderMsg(1, "00001-001-0001", 1, 2, 1, "n1", lines...)})
	first, err := parseRequest(params)
	if err != nil {
		b.Fatal(err)
	}
	fu, err := parseOrderUpdate(first.data, pData)
	if err != nil {
		b.Fatal(err)
	}
	prev := markChanged(first.data, fu.lines, nil)
	b.SetBytes(int64(len(params)))
	b.ReportAllocs()
	for b.Loop() {
		r, err := parseRequest(params)
		if err != nil {
			b.Fatal(err)
		}
		u, err := parseOrderUpdate(r.data, pData)
		if err != nil {
			b.Fatal(err)
		}
		markChanged(r.data, u.lines, prev)
	}
}

// BenchmarkParsePoll measures ParsePoll on the params an Odoo 12 terminal
// sends with every /longpolling/poll (its two channels and its cursor).
func BenchmarkParsePoll(b *testing.B) {
	e := New(memstore.New(), Options{})
	params := json.RawMessage(`{"channels":["[\"shop\",\"pos.longpolling\",\"17\"]","[\"shop\",\"pos.multi_session\",\"17\"]"],"last":123456,"options":{"bus_inactivity":1234}}`)
	b.ReportAllocs()
	for b.Loop() {
		pp, err := e.ParsePoll(params)
		if err != nil || len(pp.Channels) != 2 || pp.Last != 123456 {
			b.Fatalf("ParsePoll = %+v, %v", pp, err)
		}
	}
}
