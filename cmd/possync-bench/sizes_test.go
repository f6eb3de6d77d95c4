package main

import "testing"

// TestOrderSizes checks the size range of the generated update_order
// messages: from the smallest order (5 lines, no notes) to the largest
// (30 lines, longest notes).
func TestOrderSizes(t *testing.T) {
	l := newLayout(2, 1)
	b := newTermOrders(&l.terms[0], 1)
	o := b.next()
	for _, tt := range []struct {
		lines    int
		note     string
		min, max int
	}{{minLines, "", 2 << 10, 3 << 10}, {maxLines, "extra hot", 8 << 10, 10 << 10}} {
		o.lines = o.lines[:0]
		for range tt.lines {
			b.newLine(o)
		}
		for i := range o.lines {
			o.lines[i].note = tt.note
		}
		if size := len(appendMessage(nil, &l.terms[0], o, "abcde")); size < tt.min || size > tt.max {
			t.Errorf("%d lines: message of %d bytes, want %d to %d", tt.lines, size, tt.min, tt.max)
		}
	}
}
