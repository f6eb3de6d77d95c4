package main

import (
	"io"
	"strings"
	"testing"
)

// Every bad command line is refused before anything starts, with an error
// that names the flag at fault.
func TestParseFlagsRefuses(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string // the error must contain it
	}{
		{[]string{"-spawn", "-pos", "1"}, "-pos 1"},
		{[]string{"-spawn", "-pos", "0"}, "-pos 0"},
		{[]string{"-spawn", "-rate", "-5"}, "-rate -5"},
		{[]string{"-spawn", "-pos", "10", "-sessions", "30"}, "-sessions 30"},
		{[]string{"-spawn", "-duration", "0"}, "-duration"},
		{[]string{"-spawn", "-rate", "0", "-writers", "0"}, "-writers"},
		{[]string{"-spawn", "-idle", "abc"}, "-idle"},
		{[]string{"-spawn", "-idle", "1000,500"}, "-idle"},
		{[]string{"-spawn", "-peer", "foo"}, "-peer"},
		{[]string{"-spawn", "-url", "http://127.0.0.1:8079"}, "-spawn and -url"},
		{[]string{}, "-spawn and -url"},
		{[]string{"-url", "https://127.0.0.1:8443"}, "-url"},
		{[]string{"-url", "http://127.0.0.1:8079/pos"}, "-url"},
		{[]string{"-url", "http://127.0.0.1:8079/?db=x"}, "-url"},
		{[]string{"-url", "127.0.0.1:8079"}, "-url"},
		{[]string{"-url", "http://127.0.0.1:8079", "-server-bin", "/bin/true"}, "-server-bin"},
		{[]string{"-spawn", "extra"}, `"extra"`},
	} {
		_, err := parseFlags(c.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("parseFlags(%q) = %v, want an error naming %q", c.args, err, c.want)
		}
	}
	for _, args := range [][]string{
		{"-url", "http://127.0.0.1:8079"},
		{"-url", "http://127.0.0.1:8079/"},
		{"-spawn", "-pos", "50", "-rate", "50", "-duration", "20s", "-peer", "nchan"},
		{"-spawn", "-sessions", "20", "-pos", "200", "-rate", "0", "-writers", "2", "-duration", "10s"},
		{"-spawn", "-idle", "1000,4000", "-sessions", "400"},
	} {
		if _, err := parseFlags(args, io.Discard); err != nil {
			t.Errorf("parseFlags(%q) = %v, want it accepted", args, err)
		}
	}
}

// A ratio far below 1 keeps its digits (possync's p99 of 20 ms against a
// peer that stalled for 4 s is 0.00497, not 0).
func TestRatioSignificantDigits(t *testing.T) {
	for _, c := range []struct{ a, b, want float64 }{
		{20.3, 4085.12, 0.00497}, {6.57, 5.56, 1.18}, {751, 2686, 0.28}, {5, 0, -1},
	} {
		r := ratio(c.a, c.b)
		if (r == nil) != (c.want < 0) || (r != nil && *r != c.want) {
			t.Errorf("ratio(%v, %v) = %v, want %v", c.a, c.b, r, c.want)
		}
	}
}
