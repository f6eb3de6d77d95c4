package httpapi

import (
	"bytes"
	"encoding/json"
)

// envelope is a JSON-RPC 2.0 request as Odoo's ajax.js sends it.
type envelope struct {
	ID     json.RawMessage `json:"id"`
	Params json.RawMessage `json:"params"`
}

// parseEnvelope returns the id and params of a JSON-RPC request body, as
// json.Unmarshal into an envelope would, or encoding/json's error.
//
// The body is scanned once (splitEnvelope) instead of validated and
// decoded by encoding/json, which for a 6 KiB update_order was two full
// passes over the order before the engine validated the params a third
// time. params is then not validated here: every route hands it to the
// engine, whose parser validates it and names what is wrong ("params is
// not valid JSON: …"). A body the scan cannot vouch for goes to
// encoding/json, so its errors are unchanged.
func parseEnvelope(body []byte) (envelope, error) {
	if env, ok := splitEnvelope(body); ok {
		return env, nil
	}
	var env envelope
	err := json.Unmarshal(body, &env)
	return env, err
}

// splitEnvelope scans body as one JSON object and returns its id and
// params members (the last of each, keys matched without regard to case,
// as encoding/json matches struct fields). Every member but an object
// params must be valid JSON; such a params is only delimited (strings and
// brackets). ok is
// false for anything else, and for keys with escapes or non-ASCII bytes,
// which encoding/json decodes and folds differently.
func splitEnvelope(body []byte) (env envelope, ok bool) {
	i := skipWS(body, 0)
	if i >= len(body) || body[i] != '{' {
		return env, false
	}
	i = skipWS(body, i+1)
	if i < len(body) && body[i] == '}' {
		return env, skipWS(body, i+1) == len(body)
	}
	for {
		if i >= len(body) || body[i] != '"' {
			return env, false
		}
		ke := stringEnd(body, i)
		if ke < 0 {
			return env, false
		}
		key := body[i+1 : ke-1]
		for _, c := range key {
			if c < 0x20 || c >= 0x80 || c == '\\' {
				return env, false
			}
		}
		i = skipWS(body, ke)
		if i >= len(body) || body[i] != ':' {
			return env, false
		}
		i = skipWS(body, i+1)
		ve := valueEnd(body, i)
		if ve < 0 {
			return env, false
		}
		val := body[i:ve:ve]
		// Only an object params is left to the engine to validate: it
		// would call any other kind by its name without looking inside.
		isParams := bytes.EqualFold(key, []byte("params"))
		if (!isParams || val[0] != '{') && !json.Valid(val) {
			return env, false
		}
		switch {
		case isParams:
			// A later params replaces this one, as in encoding/json,
			// which still refuses the body if an earlier one is not
			// valid JSON: the earlier object, delimited only, is
			// validated now ({"params":{"a":tru},"Params":{}}).
			if env.Params != nil && !json.Valid(env.Params) {
				return env, false
			}
			env.Params = val
		case bytes.EqualFold(key, []byte("id")):
			env.ID = val
		}
		i = skipWS(body, ve)
		if i >= len(body) {
			return env, false
		}
		switch body[i] {
		case ',':
			i = skipWS(body, i+1)
		case '}':
			return env, skipWS(body, i+1) == len(body)
		default:
			return env, false
		}
	}
}

// skipWS returns the index of the first byte at or after i that is not
// JSON whitespace (RFC 8259 §2).
func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index just past the string starting with the
// quote at b[i], or -1 if it does not end.
func stringEnd(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return -1
}

// valueEnd returns the index just past the value starting at b[i]: a
// string, an object or array (brackets balanced outside strings, kinds not
// matched), or a scalar up to the next delimiter. It does not validate
// the value; -1 when the value does not end or is empty.
func valueEnd(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				e := stringEnd(b, j)
				if e < 0 {
					return -1
				}
				j = e - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	}
	j := i
	for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\t' && b[j] != '\n' && b[j] != '\r' {
		j++
	}
	if j == i {
		return -1
	}
	return j
}
