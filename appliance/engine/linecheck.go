package engine

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"possync/appliance/internal/jsonx"
)

// checkLines refuses order lines the server cannot read, naming the place
// (protocol.md §4.2: the server matches lines by uid and flags changed
// ones). lines may be absent or null; otherwise it is a list of Odoo
// [0, 0, {line}] triples whose line object has, if present and not null,
// a string or number uid and a number qty. Every other key is the client's and passes
// through untouched. path names lines in errors, e.g.
// "params.message.data.lines[3][2].qty: expected a number, got string".
func checkLines(raw json.RawMessage, path string) ([]line, error) {
	if raw == nil || kind(raw) == "null" {
		return nil, nil
	}
	if k := kind(raw); k != "array" {
		return nil, invalid("%s: expected a list of [0, 0, {line}] triples, got %s", path, k)
	}
	// raw is a member of a parsed message, hence valid JSON: parseLines
	// splits it without validating it again (jsonsplit.go), and the
	// update's is_changed marking reuses what it split. Lines the fast
	// path cannot vouch for go through the checks below, which name the
	// error.
	lines, ok := parseLines(raw)
	if ok && linesReadable(lines) {
		return lines, nil
	}
	if err := checkLinesSlow(raw, path); err != nil {
		return nil, err
	}
	return lines, nil
}

// checkLinesSlow is checkLines with encoding/json, for lines the fast
// path (linesReadable) does not vouch for; raw is a JSON array.
func checkLinesSlow(raw json.RawMessage, path string) error {
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return invalid("%s: not valid JSON: %s", path, jsonx.ErrorAt(err, path))
	}
	var triple []json.RawMessage
	for i, el := range elems {
		at := fmt.Sprintf("%s[%d]", path, i)
		if k := kind(el); k != "array" {
			return invalid("%s: expected a [0, 0, {line}] triple, got %s", at, k)
		}
		triple = triple[:0]
		if err := json.Unmarshal(el, &triple); err != nil {
			return invalid("%s: not valid JSON: %s", at, jsonx.ErrorAt(err, at))
		}
		if len(triple) != 3 {
			return invalid("%s: expected a [0, 0, {line}] triple, got %d elements", at, len(triple))
		}
		if k := kind(triple[2]); k != "object" {
			return invalid("%s[2]: expected a line object, got %s", at, k)
		}
		var ln struct {
			UID json.RawMessage `json:"uid"`
			Qty json.RawMessage `json:"qty"`
		}
		if err := json.Unmarshal(triple[2], &ln); err != nil {
			return invalid("%s[2]: not valid JSON: %s", at, jsonx.ErrorAt(err, at+"[2]"))
		}
		if k := kind(ln.UID); ln.UID != nil && k != "string" && k != "number" && k != "null" {
			return invalid("%s[2].uid: expected a string, got %s", at, k)
		}
		if k := kind(ln.Qty); ln.Qty != nil && k != "number" && k != "null" {
			return invalid("%s[2].qty: expected a number, got %s", at, k)
		}
		if kind(ln.Qty) == "number" {
			if f, err := strconv.ParseFloat(string(ln.Qty), 64); err != nil || math.IsInf(f, 0) {
				return invalid("%s[2].qty = %s is out of range", at, ln.Qty)
			}
		}
	}
	return nil
}

// linesReadable reports whether every line passes checkLines, deciding
// only what it can decide exactly as the checks in checkLines do: it
// reports false (the caller then runs those checks) for a line that is
// not [_, _, {object}], a line object with a non-ASCII key or with two
// keys matching uid or qty (encoding/json matches struct fields without
// regard to case, and the later key wins), or a uid or qty it refuses.
func linesReadable(lines []line) bool {
	for _, ln := range lines {
		if len(ln.triple) != 3 || ln.dict == nil {
			return false
		}
		d := ln.dict
		var uid, qty json.RawMessage
		var nUID, nQty int
		for k, v := range d {
			for i := 0; i < len(k); i++ {
				if k[i] >= utf8RuneSelf {
					return false
				}
			}
			switch {
			case strings.EqualFold(k, "uid"):
				uid, nUID = v, nUID+1
			case strings.EqualFold(k, "qty"):
				qty, nQty = v, nQty+1
			}
		}
		if nUID > 1 || nQty > 1 {
			return false
		}
		if k := kind(uid); uid != nil && k != "string" && k != "number" && k != "null" {
			return false
		}
		switch kind(qty) {
		case "null":
		case "number":
			if f, err := strconv.ParseFloat(string(qty), 64); err != nil || math.IsInf(f, 0) {
				return false
			}
		default:
			if qty != nil {
				return false
			}
		}
	}
	return true
}

// utf8RuneSelf is the first byte value that is not ASCII.
const utf8RuneSelf = 0x80
