package engine

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

var splitCases = []string{
	`{}`, ` { } `, `{"a":1}`, `{"a" : [1, {"b":"}"}] , "c":"x\"y" }`,
	`{"a":1,"a":2}`, `{"\u0061ction":"x","é":true,"k\n":null,"[\"db\",\"c\/\\\b\f\r\t\"]":1}`, "{\"\xff\":1}",
	`{"lines":[[0,0,{"uid":"l1","qty":1e3,"note":"[{\\\""}]],"n":-0.5,"t":true,"f":false}`,
	`{"nested":{"deep":{"deeper":[[],{},"",0]}}}`,
}

// TestSplitObjectMatchesUnmarshal: on valid objects splitObject gives what
// json.Unmarshal gives.
func TestSplitObjectMatchesUnmarshal(t *testing.T) {
	for _, c := range splitCases {
		checkSplit(t, []byte(c))
	}
}

func checkSplit(t *testing.T, raw []byte) {
	t.Helper()
	var want object
	if err := json.Unmarshal(raw, &want); err != nil {
		return
	}
	got, ok := splitObject(raw)
	if !ok {
		t.Fatalf("splitObject(%q) refused a valid object", raw)
	}
	if want == nil {
		want = object{}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("splitObject(%q) = %q, want %q", raw, got, want)
	}
}

// TestSplitTriplesMatchesUnmarshal: on valid arrays of arrays
// splitTriples gives what json.Unmarshal gives.
func TestSplitTriplesMatchesUnmarshal(t *testing.T) {
	for _, c := range []string{`[]`, ` [ [0, 0, {"a":1}] , [] ,[null,"]"]] `, `[[0,0,{"uid":"x","note":"[\"]"}],[1]]`, `[null,[1]]`, `[1]`} {
		checkTriples(t, []byte(c))
	}
}

func checkTriples(t *testing.T, raw []byte) {
	t.Helper()
	var want [][]json.RawMessage
	if err := json.Unmarshal(raw, &want); err != nil {
		return
	}
	got, ok := splitTriples(raw)
	if !ok {
		for _, w := range want {
			if w == nil {
				return // a null element: the caller falls back to Unmarshal
			}
		}
		t.Fatalf("splitTriples(%q) refused a valid array of arrays", raw)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("splitTriples(%q) = %q, want %q", raw, got, want)
	}
}

// FuzzSplitObject: for any input json.Unmarshal takes as an object (an
// array of arrays), splitObject (splitTriples) returns the same.
func FuzzSplitObject(f *testing.F) {
	for _, c := range splitCases {
		f.Add([]byte(c))
	}
	for _, m := range fuzzMessages {
		f.Add([]byte(m))
	}
	f.Add([]byte(` [ [0, 0, {"a":1}] , [] ,[null,"]"]] `))
	f.Add([]byte(`[null,[1]]`))
	f.Add([]byte(`"[\"shop\",\"pos.multi_session\",\"7\"]"`))
	f.Add([]byte(`"a\/b\n\u00e9\t"`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		switch kind(raw) {
		case "object":
			checkSplit(t, raw)
		case "array":
			checkTriples(t, raw)
		case "string":
			var want string
			if json.Unmarshal(raw, &want) != nil {
				return
			}
			if got, ok := memberKey(bytes.TrimSpace(raw)); !ok || got != want {
				t.Fatalf("memberKey(%q) = %q, %v; want %q", raw, got, ok, want)
			}
		}
	})
}
