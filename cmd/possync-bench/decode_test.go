package main

import (
	"encoding/json"
	"testing"

	jsonv2 "github.com/go-json-experiment/json"
)

// pollBody returns a poll answer holding one update_order copy of a
// 17-line order, as possync renders it.
func pollBody(tb testing.TB) []byte {
	l := newLayout(2, 1)
	b := newTermOrders(&l.terms[0], 1)
	o := b.next()
	for len(o.lines) < 17 {
		b.newLine(o)
	}
	msg := appendMessage(nil, &l.terms[0], o, "abcde")
	return []byte(`{"jsonrpc":"2.0","id":5,"result":[{"id":42,"channel":"[\"db\",\"pos.multi_session\",\"2\"]","message":` + string(msg) + `}]}`)
}

// TestDecodePoll checks that a poll answer yields what the client filter
// reads.
func TestDecodePoll(t *testing.T) {
	var ans pollAnswer
	if err := jsonv2.Unmarshal(pollBody(t), &ans); err != nil {
		t.Fatal(err)
	}
	if len(ans.Result) != 1 || ans.Result[0].ID != 42 || ans.Result[0].Message.Data.Nonce != "abcde" ||
		ans.Result[0].Message.Action != "update_order" || ans.Result[0].Message.SessionID != 1001 {
		t.Errorf("decoded %+v", ans.Result)
	}
}

// BenchmarkDecodePoll: the generator's cost to read one delivery (v2 is
// what it uses; v1 for comparison).
func BenchmarkDecodePoll(b *testing.B) {
	body := pollBody(b)
	b.Run("v2", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			var ans pollAnswer
			if err := jsonv2.Unmarshal(body, &ans); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("v1", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			var ans pollAnswer
			if err := json.Unmarshal(body, &ans); err != nil {
				b.Fatal(err)
			}
		}
	})
}
