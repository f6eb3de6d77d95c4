package httpapi_test

// Decision 7 and §11: every field the server does not own round-trips
// unchanged. Numbers are compared as json.Number, i.e. by their exact text.

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"possync/appliance/apptest"
)

// exotic returns values that must survive the server untouched.
func exotic() map[string]any {
	return map[string]any{
		"x_unknown": map[string]any{"nested": []any{[]any{0, 0, map[string]any{
			"a": nil, "b": false,
			"deep": []any{[]any{0, 0, map[string]any{"uid": "not-a-line", "is_changed": "no", "qty": 1}}},
		}}}},
		// pos_order_cancel: [0,0,{line}] triples outside "lines" are not lines.
		"canceled_lines": []any{[]any{0, 0, map[string]any{"uid": "00101-001-0001-1", "qty": 1, "reason": "спасибо"}}},
		"note":           "Café ☕ 🍕 naïve \u2028 <b>&amp;</b> \"quoted\" \\ back \u0000 end",
		"big":            json.Number("12345678901234567890"),
		"tiny":           json.Number("0.1"),
		"exp":            json.Number("1e+21"),
		"neg":            json.Number("-3.5"),
		"null_field":     nil,
		"false_field":    false,
		"empty_obj":      map[string]any{},
		"empty_arr":      []any{},
		"ключ":           "значение",
		"":               "empty key",
		// pos_multi_session_restaurant (§4.7)
		"table_id": 3, "floor_id": 1, "table": "T3", "floor": "Terrasse", "customer_count": 4,
		"multiprint_resume": "{\"lines\":[]}", "removed_table_id": nil,
	}
}

func exoticLine() map[string]any {
	return map[string]any{
		"note": "sans oignon 🧅", "mp_dirty": false, "mp_skip": nil, "custom_notes": nil,
		"absolute_discount": json.Number("0.1"), "x_big": json.Number("12345678901234567890"),
		"x_nested":     []any{[]any{0, 0, map[string]any{"k": nil, "emoji": "👩‍🍳"}}},
		"pack_lot_ids": []any{[]any{0, 0, map[string]any{"lot_name": "LOT-1"}}},
	}
}

func TestPassThrough(t *testing.T) {
	t.Parallel()
	srv := newServer(t, apptest.Options{})
	a := openPOS(t, srv, cfg("shop", 1, 1, 2))
	b := openPOS(t, srv, cfg("shop", 1, 2, 5))
	must := mustOK(t)

	o := a.NewOrder(1)
	l1 := a.AddLine(o, 50, 1, 4.8)
	a.AddLine(o, 51, 3, 0.1)
	for k, v := range exotic() {
		o[k] = v
	}
	for k, v := range exoticLine() {
		o.Line(l1)[k] = v
	}
	top := map[string]any{"x_top": map[string]any{"k": []any{json.Number("1.50"), nil, false, "ü"}}}

	send := func(rev int64) (sent, answer map[string]any) {
		t.Helper()
		sent = o.Export()
		res, err := a.Send("update_order", sent, top)
		if err != nil {
			t.Fatal(err)
		}
		answer, _ = res.(map[string]any)
		if diff := cmp.Diff(revAnswer(o.UID(), rev, 1, 1), answer); diff != "" {
			t.Fatalf("update answer mismatch (-want +got):\n%s", diff)
		}
		o["revision_ID"] = rev
		return sent, answer
	}
	check := func(what string, want, got map[string]any) {
		t.Helper()
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: data not passed through (-want +got):\n%s", what, diff)
		}
	}

	sent, answer := send(1)
	got := expectMS(t, b, "update_order", o.UID())
	check("broadcast of new order", sentAs(a, sent, answer), normalize(got.Data()))
	if diff := cmp.Diff(top["x_top"], got.Msg()["x_top"]); diff != "" {
		t.Errorf("message-level unknown key x_top (-want +got):\n%s", diff)
	}

	o.SetQty(l1, 2)
	sent, answer = send(2)
	got = expectMS(t, b, "update_order", o.UID())
	check("broadcast of changed order", sentAs(a, sent, answer), normalize(got.Data()))
	if got := apptest.Lines(got.Data())[0]["is_changed"]; got != true {
		t.Errorf("changed line with unknown fields: is_changed = %v, want true", got)
	}

	want := sentAs(a, sent, answer)
	delete(want, "pos_id") // compare only the order fields below
	stored := normalize(syncOrders(t, must(b.SyncAll(true, "")))[o.UID()])
	delete(stored, "pos_id")
	check("immediate sync_all copy", want, stored)

	rm := map[string]any{"uid": o.UID(), "revision_ID": 2, "finalized": false, "run_ID": 1, "x_reason": exotic()}
	if _, err := a.Send("remove_order", rm, nil); err != nil {
		t.Fatal(err)
	}
	got = expectMS(t, b, "remove_order", o.UID())
	wantRm := normalize(apptest.Clone(rm))
	wantRm["pos_id"] = n(1)
	check("broadcast of remove_order", wantRm, normalize(got.Data()))
}
