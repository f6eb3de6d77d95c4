package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"possync/appliance"
	"possync/storage/memstore"
)

// Issue 10, bad input: a refused order update names what was wrong and
// where, down to the order line, and changes nothing stored (each would
// be accepted but for its lines); unknown line keys, null values and
// lines without a uid still pass.
func TestBadOrderLinesNamed(t *testing.T) {
	store := memstore.New()
	e := openEngine(t, store, Options{})
	call(t, e, "shop", 1, 2, syncAllMsg(1, 1, true))
	good := []any{[]any{0, 0, map[string]any{"uid": "l1", "qty": 1}}}
	call(t, e, "shop", 1, 2, orderMsg(1, "u1", 1, 1, 1, "n1", good...))
	before, err := store.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	line := func(i int, ln string) string { // lines with ln at index i
		s := "["
		for j := range i {
			s += fmt.Sprintf(`[0,0,{"uid":"l%d","qty":1}],`, j)
		}
		return s + ln + "]"
	}
	const p = "params.message.data.lines"
	for _, tt := range []struct {
		name, lines, want string
	}{
		{"lines not a list", `"x"`, p + ": expected a list of [0, 0, {line}] triples, got string"},
		{"lines an object", `{"a":1}`, p + ": expected a list of [0, 0, {line}] triples, got object"},
		{"line not a triple", line(2, `5`), p + "[2]: expected a [0, 0, {line}] triple, got number"},
		{"line too short", line(1, `[0,0]`), p + "[1]: expected a [0, 0, {line}] triple, got 2 elements"},
		{"line dict a string", line(3, `[0,0,"qty"]`), p + "[3][2]: expected a line object, got string"},
		{"qty a string", line(3, `[0,0,{"uid":"l3","qty":"2"}]`), p + "[3][2].qty: expected a number, got string"},
		{"qty a boolean", line(0, `[0,0,{"uid":"l0","qty":true}]`), p + "[0][2].qty: expected a number, got boolean"},
		{"uid an object", line(1, `[0,0,{"uid":{"a":1},"qty":1}]`), p + "[1][2].uid: expected a string, got object"},
		{"qty beyond float64", line(2, `[0,0,{"uid":"l2","qty":1e400}]`), p + "[2][2].qty = 1e400 is out of range"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			params := `{"multi_session_id":1,"dbname":"shop","user_ID":2,"message":{"action":"update_order","session_id":10,"login_number":1,` +
				`"data":{"uid":"u1","sequence_number":1,"revision_ID":1,"run_ID":1,"pos_id":1,"nonce":"n2","lines":` + tt.lines + `}}}`
			_, err := e.Update(context.Background(), json.RawMessage(params))
			var ae *appliance.Error
			if !errors.As(err, &ae) || ae.Code != appliance.EINVALID || ae.Message != tt.want {
				t.Fatalf("Update(lines %s) = %v, want EINVALID %q", tt.lines, err, tt.want)
			}
		})
	}
	after, err := store.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if b, a := mustJSON(t, before), mustJSON(t, after); string(a) != string(b) {
		t.Errorf("refused updates changed the store:\n%s\nbefore:\n%s", a, b)
	}

	// Readable lines with keys the server does not know pass through.
	extra := []any{[]any{0, 0, map[string]any{"uid": "l1", "qty": 2.5, "custom_notes": []any{"x"}, "was_printed": nil}}, []any{0, 0, map[string]any{"uid": "l2", "qty": nil}}, []any{0, 0, map[string]any{"note": "no uid"}}}
	res := call(t, e, "shop", 1, 2, orderMsg(1, "u1", 1, 1, 1, "n3", extra...))
	if res["action"] == "revision_error" {
		t.Fatalf("a readable update was refused: %v", res)
	}
	all := call(t, e, "shop", 1, 2, syncAllMsg(1, 1, true))
	got := fmt.Sprint(all["data"].(map[string]any)["orders"])
	for _, want := range []string{"custom_notes:[x]", "was_printed:<nil>", "note:no uid", "qty:2.5"} {
		if !contains(got, want) {
			t.Errorf("sync_all after a readable update lacks %s: %s", want, got)
		}
	}
}

// linesAgree fails when the fast path vouches for lines that the
// encoding/json checks refuse.
func linesAgree(t *testing.T, raw []byte) {
	t.Helper()
	if !json.Valid(raw) || kind(raw) != "array" {
		return
	}
	lines, ok := parseLines(raw)
	if !ok || !linesReadable(lines) {
		return
	}
	if err := checkLinesSlow(raw, "lines"); err != nil {
		t.Fatalf("linesReadable(%s) = true, but the encoding/json checks refuse it: %v", raw, err)
	}
}

// TestLinesReadable: the fast path passes ordinary lines, leaves the cases
// encoding/json decides differently (keys in another case, duplicates,
// non-ASCII keys) to the slow checks, and never passes what they refuse.
func TestLinesReadable(t *testing.T) {
	for _, c := range []struct {
		lines string
		fast  bool // linesReadable vouches for them
		ok    bool // checkLines accepts them
	}{
		{`[]`, true, true},
		{`[[0,0,{"uid":"a","qty":1.5,"x":{"y":[1,2]}}]]`, true, true},
		{`[[0,0,{"uid":7,"qty":null}],[1,2,{}]]`, true, true},
		{`[[0,0,{"UID":"a","Qty":2}]]`, true, true},
		{`[[0,0,{"uid":"a","QTY":"2"}]]`, false, false},
		{`[[0,0,{"qty":1,"Qty":"x"}]]`, false, false},
		{`[[0,0,{"qty":"x","Qty":1}]]`, false, true},
		{`[[0,0,{"uid":true}]]`, false, false},
		{`[[0,0,{"qty":1e999}]]`, false, false},
		{`[[0,0,{"qty":[1]}]]`, false, false},
		{`[[0,0,{"é":1,"qty":1}]]`, false, true},
		{`[[0,0,{"qty":1}],[0,0]]`, false, false},
		{`[[0,0,"line"]]`, false, false},
		{`[null]`, false, false},
		{`[[0,0,{"uid":"a","uid":{}}]]`, false, false},
	} {
		raw := []byte(c.lines)
		lines, split := parseLines(raw)
		if fast := split && linesReadable(lines); fast != c.fast {
			t.Errorf("linesReadable(%s) = %v, want %v", c.lines, fast, c.fast)
		}
		if _, err := checkLines(raw, "lines"); (err == nil) != c.ok {
			t.Errorf("checkLines(%s) = %v, want ok %v", c.lines, err, c.ok)
		}
		linesAgree(t, raw)
	}
}

// FuzzLinesReadable: whatever the lines, the fast path never vouches for
// lines that the encoding/json checks refuse.
func FuzzLinesReadable(f *testing.F) {
	for _, s := range []string{`[[0,0,{"uid":"a","qty":1}]]`, `[[0,0,{"UID":1,"uid":"b"}]]`, `[[0,0,{"qty":"1"}]]`, `[[0,0,{"Qty":-0.5e3}]]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(linesAgree)
}
