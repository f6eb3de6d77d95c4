package engine

import (
	"bytes"
	"encoding/json"
	"math/big"
	"slices"
	"strconv"

	"possync/appliance"
	"possync/appliance/internal/jsonx"
)

// object is a JSON object whose values are kept as raw bytes, so fields the
// engine does not own round-trip untouched (protocol.md §11).
type object map[string]json.RawMessage

// parseObject decodes raw as a JSON object; path names it in errors.
func parseObject(raw json.RawMessage, path string) (object, error) {
	if len(raw) == 0 {
		return nil, invalid("%s is missing", path)
	}
	if k := kind(raw); k != "object" {
		return nil, invalid("%s must be a JSON object, got %s", path, k)
	}
	// Validate once, then split in one pass (jsonsplit.go) instead of
	// the reflection-based decode; the error comes from encoding/json.
	if json.Valid(raw) {
		if o, ok := splitObject(raw); ok {
			return o, nil
		}
	}
	var o object
	if err := json.Unmarshal(raw, &o); err != nil {
		return nil, invalid("%s is not valid JSON: %s", path, jsonx.ErrorAt(err, path))
	}
	return o, nil
}

// kind names the JSON type of raw for error messages.
func kind(raw json.RawMessage) string {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

func invalid(format string, args ...any) error {
	return appliance.Errorf(appliance.EINVALID, format, args...)
}

// intValue parses raw as an integer the way the reference server's Python
// int() accepts it from JSON: an integral number, or a string holding one.
func intValue(raw json.RawMessage, path string) (int64, error) {
	if len(raw) == 0 {
		return 0, invalid("%s is missing", path)
	}
	s := string(bytes.TrimSpace(raw))
	if kind(raw) == "string" {
		var str string
		if err := json.Unmarshal(raw, &str); err != nil {
			return 0, invalid("%s is not a valid string", path)
		}
		s = str
	} else if kind(raw) != "number" {
		return 0, invalid("%s must be an integer, got %s", path, kind(raw))
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, nil
	}
	// 3.0 or 3e2 are integral numbers too.
	if f, _, err := big.ParseFloat(s, 10, 128, big.ToNearestEven); err == nil && f.IsInt() {
		if n, acc := f.Int64(); acc == big.Exact {
			return n, nil
		}
		return 0, invalid("%s = %s is out of range", path, s)
	}
	return 0, invalid("%s must be an integer, got %s", path, truncate(s, 40))
}

// field returns o[key] treating JSON null as absent.
func (o object) field(key string) json.RawMessage {
	v := o[key]
	if len(v) == 0 || string(v) == "null" {
		return nil
	}
	return v
}

// requiredInt reads an integer member.
func (o object) requiredInt(key, path string) (int64, error) {
	return intValue(o.field(key), path+"."+key)
}

// requiredString reads a string member.
func (o object) requiredString(key, path string) (string, error) {
	raw := o.field(key)
	if raw == nil {
		return "", invalid("%s.%s is missing", path, key)
	}
	if k := kind(raw); k != "string" {
		return "", invalid("%s.%s must be a string, got %s", path, key, k)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", invalid("%s.%s is not a valid string", path, key)
	}
	return s, nil
}

// maxDBNameBytes is the longest database name taken: PostgreSQL keeps 63
// bytes of an identifier (NAMEDATALEN-1), so no Odoo database has a longer
// name. Bounding it keeps store keys, channels and the status page small.
const maxDBNameBytes = 63

// maxUIDBytes is the longest order uid taken. Odoo 12 makes 14-character
// uids ("00012-003-0007"); the bound leaves room for other formats and keeps
// an order's store key far below Badger's 65000-byte limit, so an absurd uid
// is refused as bad input instead of failing the commit.
const maxUIDBytes = 256

// dbName reads the database name member key of o.
func (o object) dbName(key, path string) (string, error) {
	db, err := o.requiredString(key, path)
	if err == nil && len(db) > maxDBNameBytes {
		return "", invalid("%s.%s is %d bytes long; a database name has at most %d (PostgreSQL's limit)", path, key, len(db), maxDBNameBytes)
	}
	return db, err
}

// orderUID reads the order uid member "uid" of o.
func (o object) orderUID(path string) (string, error) {
	uid, err := o.requiredString("uid", path)
	if err == nil && len(uid) > maxUIDBytes {
		return "", invalid("%s.uid is %d bytes long; an order uid has at most %d", path, len(uid), maxUIDBytes)
	}
	return uid, err
}

// truthy reports JavaScript truthiness of a JSON value (absent = false).
func truthy(raw json.RawMessage) bool {
	s := string(bytes.TrimSpace(raw))
	switch s {
	case "", "null", "false", "0", `""`, "-0", "0.0":
		return false
	}
	if kind(raw) == "number" {
		if f, err := strconv.ParseFloat(s, 64); err == nil && f == 0 {
			return false
		}
	}
	return true
}

// appendObject writes o as a JSON object with keys sorted, raw values as is.
func appendObject(dst []byte, o object) []byte {
	keys := make([]string, 0, len(o))
	for k := range o {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, k)
		dst = append(dst, ':')
		dst = append(dst, o[k]...)
	}
	return append(dst, '}')
}

func (o object) bytes() []byte { return appendObject(nil, o) }

// appendString appends s as a JSON string the way JSON.stringify does.
func appendString(dst []byte, s string) []byte { return jsonx.AppendString(dst, s) }

// rawInt encodes n as a JSON number.
func rawInt(n int64) json.RawMessage { return strconv.AppendInt(nil, n, 10) }

// rawString encodes s as a JSON string.
func rawString(s string) json.RawMessage { return appendString(nil, s) }

var rawTrue = json.RawMessage("true")

// jsonEqual compares two JSON values the way Python compares the decoded
// values (numbers by value, objects by content regardless of key order).
func jsonEqual(a, b json.RawMessage) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var va, vb any
	da := json.NewDecoder(bytes.NewReader(a))
	da.UseNumber()
	db := json.NewDecoder(bytes.NewReader(b))
	db.UseNumber()
	if da.Decode(&va) != nil || db.Decode(&vb) != nil {
		return false
	}
	return valueEqual(va, vb)
}

func valueEqual(a, b any) bool {
	switch a := a.(type) {
	case map[string]any:
		bm, ok := b.(map[string]any)
		if !ok || len(a) != len(bm) {
			return false
		}
		for k, v := range a {
			w, ok := bm[k]
			if !ok || !valueEqual(v, w) {
				return false
			}
		}
		return true
	case []any:
		bs, ok := b.([]any)
		if !ok || len(a) != len(bs) {
			return false
		}
		for i := range a {
			if !valueEqual(a[i], bs[i]) {
				return false
			}
		}
		return true
	case json.Number:
		bn, ok := b.(json.Number)
		if !ok {
			return false
		}
		if a == bn {
			return true
		}
		fa, _, ea := big.ParseFloat(string(a), 10, 256, big.ToNearestEven)
		fb, _, eb := big.ParseFloat(string(bn), 10, 256, big.ToNearestEven)
		return ea == nil && eb == nil && fa.Cmp(fb) == 0
	default:
		return a == b
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
