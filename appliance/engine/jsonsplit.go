package engine

import (
	"encoding/json"
	"unicode/utf8"

	"possync/appliance/internal/jsonx"
)

// parseMember is parseObject for raw taken from an object that parseObject
// (or parseMember) already decoded, hence valid JSON: it splits the object
// into its members in one pass without validating it again (encoding/json
// validates every nested value once per level, which for a 6 KiB order was
// most of the update's parse time). Same result and errors as parseObject.
func parseMember(raw json.RawMessage, path string) (object, error) {
	if len(raw) == 0 || kind(raw) != "object" {
		return parseObject(raw, path)
	}
	if o, ok := splitObject(raw); ok {
		return o, nil
	}
	return parseObject(raw, path)
}

// splitObject decodes raw, a valid JSON object, into its members as
// json.Unmarshal into an object would: values are copies of their raw text,
// a later duplicate key wins, keys with escapes or non-ASCII bytes are
// decoded by encoding/json. It reports false when raw does not have the
// shape of an object (it is not valid JSON): the caller then falls back to
// parseObject.
func splitObject(raw []byte) (object, bool) {
	o := make(object)
	ok := walkContainer(raw, '{', '}', func(i int) int {
		if raw[i] != '"' {
			return -1
		}
		ke := jsonx.StringEnd(raw, i)
		if ke < 0 {
			return -1
		}
		key, ok := memberKey(raw[i:ke])
		if !ok {
			return -1
		}
		i = jsonx.SkipSpace(raw, ke)
		if i >= len(raw) || raw[i] != ':' {
			return -1
		}
		vs := jsonx.SkipSpace(raw, i+1)
		ve := jsonx.ValueEnd(raw, vs)
		if ve < 0 {
			return -1
		}
		o[key] = append(json.RawMessage(nil), raw[vs:ve]...)
		return ve
	})
	if !ok {
		return nil, false
	}
	return o, true
}

// walkContainer walks raw, a JSON object (open '{', end '}') or array
// (open '[', end ']'): elem parses the member or element that starts at
// raw[i] (i < len(raw)) and returns the index after it, or -1 when it is
// malformed. walkContainer reports whether raw has the container's shape
// with only white space after it.
func walkContainer(raw []byte, open, end byte, elem func(i int) int) bool {
	i := jsonx.SkipSpace(raw, 0)
	if i >= len(raw) || raw[i] != open {
		return false
	}
	i = jsonx.SkipSpace(raw, i+1)
	if i < len(raw) && raw[i] == end {
		return jsonx.SkipSpace(raw, i+1) == len(raw)
	}
	for {
		if i >= len(raw) {
			return false
		}
		e := elem(i)
		if e < 0 {
			return false
		}
		i = jsonx.SkipSpace(raw, e)
		if i >= len(raw) {
			return false
		}
		switch raw[i] {
		case ',':
			i = jsonx.SkipSpace(raw, i+1)
		case end:
			return jsonx.SkipSpace(raw, i+1) == len(raw)
		default:
			return false
		}
	}
}

// memberKey decodes a JSON string (a key or a string value, quotes
// included): its bytes when it is plain ASCII without escapes, otherwise as
// encoding/json decodes it.
func memberKey(q []byte) (string, bool) {
	body := q[1 : len(q)-1]
	plain := true
	for _, c := range body {
		if c == '\\' || c >= utf8.RuneSelf || c < 0x20 {
			plain = false
			break
		}
	}
	if plain {
		return string(body), true
	}
	// ASCII with only two-character escapes (a channel name is
	// "[\"db\",\"pos.multi_session\",\"7\"]"): unescaped here.
	out := make([]byte, 0, len(body))
	for i := 0; i < len(body); i++ {
		c := body[i]
		if c >= utf8.RuneSelf || c < 0x20 {
			return decodeString(q)
		}
		if c != '\\' {
			out = append(out, c)
			continue
		}
		if i++; i == len(body) {
			return decodeString(q)
		}
		switch body[i] {
		case '"', '\\', '/':
			out = append(out, body[i])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		default: // \u…: left to encoding/json
			return decodeString(q)
		}
	}
	return string(out), true
}

func decodeString(q []byte) (string, bool) {
	var k string
	return k, json.Unmarshal(q, &k) == nil
}

// splitArray splits raw, a valid JSON array, into copies of its elements'
// raw text, as json.Unmarshal into []json.RawMessage would. It reports
// false when raw does not have the shape of an array.
func splitArray(raw []byte) ([]json.RawMessage, bool) {
	out := []json.RawMessage{}
	ok := walkContainer(raw, '[', ']', func(i int) int {
		ve := jsonx.ValueEnd(raw, i)
		if ve <= i {
			return -1
		}
		out = append(out, append(json.RawMessage(nil), raw[i:ve]...))
		return ve
	})
	if !ok {
		return nil, false
	}
	return out, true
}

// splitTriples splits raw, a valid JSON array, as json.Unmarshal into
// [][]json.RawMessage would; false when an element is not an array (null
// elements, which Unmarshal takes as nil, too: the caller falls back).
func splitTriples(raw []byte) ([][]json.RawMessage, bool) {
	elems, ok := splitArray(raw)
	if !ok {
		return nil, false
	}
	out := make([][]json.RawMessage, len(elems))
	for i, el := range elems {
		if out[i], ok = splitArray(el); !ok {
			return nil, false
		}
	}
	return out, true
}
