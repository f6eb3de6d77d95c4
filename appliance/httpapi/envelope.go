package httpapi

import (
	"bytes"
	"encoding/json"

	"possync/appliance/internal/jsonx"
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
	i := jsonx.SkipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return env, false
	}
	i = jsonx.SkipSpace(body, i+1)
	if i < len(body) && body[i] == '}' {
		return env, jsonx.SkipSpace(body, i+1) == len(body)
	}
	for {
		if i >= len(body) || body[i] != '"' {
			return env, false
		}
		ke := jsonx.StringEnd(body, i)
		if ke < 0 {
			return env, false
		}
		key := body[i+1 : ke-1]
		for _, c := range key {
			if c < 0x20 || c >= 0x80 || c == '\\' {
				return env, false
			}
		}
		i = jsonx.SkipSpace(body, ke)
		if i >= len(body) || body[i] != ':' {
			return env, false
		}
		i = jsonx.SkipSpace(body, i+1)
		ve := jsonx.ValueEnd(body, i)
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
		i = jsonx.SkipSpace(body, ve)
		if i >= len(body) {
			return env, false
		}
		switch body[i] {
		case ',':
			i = jsonx.SkipSpace(body, i+1)
		case '}':
			return env, jsonx.SkipSpace(body, i+1) == len(body)
		default:
			return env, false
		}
	}
}
