package jsonx

import "testing"

func TestValueEnd(t *testing.T) {
	for _, c := range []struct {
		in   string
		at   int
		want int
	}{
		{`"a\"b",`, 0, 6},
		{`{"a":["}",{"b":1}]} x`, 0, 19},
		{`[1,[2,3]]`, 3, 8},
		{`123 ,`, 0, 3},
		{`true}`, 0, 4},
		{`-1.5e3`, 0, 6},
		{`,1`, 0, -1},   // empty scalar
		{`"abc`, 0, -1}, // unterminated string
		{`{"a":1`, 0, -1},
		{`[1,"]"`, 0, -1},
		{``, 0, -1},
	} {
		if got := ValueEnd([]byte(c.in), c.at); got != c.want {
			t.Errorf("ValueEnd(%q, %d) = %d, want %d", c.in, c.at, got, c.want)
		}
	}
	if got := SkipSpace([]byte(" \t\r\n x"), 0); got != 5 {
		t.Errorf("SkipSpace = %d, want 5", got)
	}
	if got := StringEnd([]byte(`"\\"x`), 0); got != 4 {
		t.Errorf(`StringEnd("\\") = %d, want 4`, got)
	}
}
