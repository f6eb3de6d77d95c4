package config

import (
	"strings"
	"testing"
)

// Issue 13.5: keys that differ only in case were accepted, and with both
// spellings in one table which one won changed from start to start.
func TestKeysAreCaseSensitive(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // substrings of the error
	}{
		{
			"case twins",
			"[http]\nlisten = \"127.0.0.1:18943\"\nListen = \"127.0.0.1:18944\"\n",
			[]string{"http.Listen: unknown key (line 3)", "did you mean http.listen?"},
		},
		{
			"table in capitals",
			"[HTTP]\nlisten = \"127.0.0.1:18943\"\n",
			[]string{"HTTP: unknown key (line 1)", "did you mean http?"},
		},
		{
			"key in capitals alone",
			"# comment Listen = x\n[http]\nListen = \"127.0.0.1:18944\"\n",
			[]string{"http.Listen: unknown key (line 3)"},
		},
		{
			"dotted key",
			"http.Poll_Hold = \"5s\"\n",
			[]string{"http.Poll_Hold: unknown key (line 1)", "did you mean http.poll_hold?"},
		},
		{
			"same wrong key in two tables: each with its own line",
			"[storage]\nListen = \"x\"\n\n[http]\nListen = \"127.0.0.1:18944\"\n",
			[]string{"storage.Listen: unknown key (line 2)", "http.Listen: unknown key (line 5)"},
		},
		{
			"dotted key inside a table",
			"[log]\nlevel = \"info\"\n[discovery]\nhttp.Listen = 1\n[http]\nlisten = \":1\"\nhttp.Listen = 2\n",
			[]string{"discovery.http: unknown key (line 4)", "http.http: unknown key (line 7)"},
		},
		{
			"table named again in a later header",
			"[bus]\nreplay = \"60s\"\n[HTTP.tls]\nx = 1\n",
			[]string{"HTTP: unknown key (line 3)"},
		},
		{
			"inline table",
			"http = { Listen = \"127.0.0.1:1\" }\n",
			[]string{"http.Listen: unknown key (line 1)"},
		},
		{
			"misspelt key keeps its line",
			"[log]\nlevel = \"info\"\n\n[http]\npol_hold = \"5s\"\n",
			[]string{"http.pol_hold: unknown key (line 5)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tt.in), "test.toml")
			if err == nil {
				t.Fatalf("Parse(%q) = nil error, want one", tt.in)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Parse(%q) error = %q, want it to contain %q", tt.in, err, w)
				}
			}
		})
	}
}

// Only the outermost wrong part of a path is reported: "[HTTP]" is one
// problem, not one per key inside it.
func TestUnknownTableReportedOnce(t *testing.T) {
	_, err := Parse(strings.NewReader("[HTTP]\nlisten = \":1\"\nmax_conns = 5\n"), "t.toml")
	if err == nil {
		t.Fatal("Parse([HTTP]) = nil error")
	}
	if n := strings.Count(err.Error(), "unknown key"); n != 1 {
		t.Errorf("error = %q: %d unknown keys, want 1", err, n)
	}
}

// The same file always means the same thing: decoding it many times gives
// the same answer (map order in the decoder used to pick the winner).
func TestSameFileSameResult(t *testing.T) {
	in := "[http]\nlisten = \"127.0.0.1:18943\"\nListen = \"127.0.0.1:18944\"\n"
	var first string
	for i := 0; i < 50; i++ {
		_, err := Parse(strings.NewReader(in), "t.toml")
		if err == nil {
			t.Fatalf("start %d: Parse accepted case twins", i)
		}
		if i == 0 {
			first = err.Error()
		} else if err.Error() != first {
			t.Fatalf("start %d: error %q, first start said %q", i, err, first)
		}
	}
}

func TestSchemaKeys(t *testing.T) {
	for _, k := range []string{"http", "http.listen", "storage.dir", "discovery.interfaces", "bus.replay"} {
		if !knownKeys[k] {
			t.Errorf("knownKeys[%q] = false", k)
		}
	}
	// Duration is a TextUnmarshaler: a leaf, not a table.
	for k := range knownKeys {
		if strings.HasPrefix(k, "http.poll_hold.") {
			t.Errorf("knownKeys has %q inside a Duration", k)
		}
	}
}
