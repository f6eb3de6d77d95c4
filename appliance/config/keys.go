package config

import (
	"bytes"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// knownKeys is every key path the Config schema accepts, spelled exactly as
// its `toml` tags (tables included: "http", "http.listen", …).
var knownKeys = schemaKeys(reflect.TypeOf(Config{}), "")

// schemaKeys walks the toml tags of t. A struct that is not a
// TextUnmarshaler is a table; everything else is a leaf value.
func schemaKeys(t reflect.Type, prefix string) map[string]bool {
	keys := make(map[string]bool)
	textUnmarshaler := reflect.TypeOf((*interface{ UnmarshalText([]byte) error })(nil)).Elem()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "" || name == "-" {
			continue
		}
		path := name
		if prefix != "" {
			path = prefix + "." + name
		}
		keys[path] = true
		if f.Type.Kind() == reflect.Struct && !reflect.PointerTo(f.Type).Implements(textUnmarshaler) {
			for k := range schemaKeys(f.Type, path) {
				keys[k] = true
			}
		}
	}
	return keys
}

// unknownKeys reports every key of the file that is not spelled exactly as
// documented, with its line. BurntSushi/toml falls back to a case-insensitive
// match when no field has the exact name, so "Listen" or "[HTTP]" would be
// accepted silently, and with both "listen" and "Listen" in one table the
// winner would depend on map order, changing from start to start. Only the
// outermost wrong part of a path is reported ("HTTP", not also "HTTP.listen").
func unknownKeys(md toml.MetaData, src []byte) Errors {
	var errs Errors
	reported := make(map[string]bool)
	for _, k := range md.Keys() {
		for i := 1; i <= len(k); i++ {
			prefix := k[:i]
			path := prefix.String()
			if knownKeys[path] {
				continue
			}
			if !reported[path] {
				reported[path] = true
				errs = append(errs, &FieldError{Field: path, Msg: unknownKeyMsg(prefix, src)})
			}
			break
		}
	}
	return errs
}

func unknownKeyMsg(k toml.Key, src []byte) string {
	msg := "unknown key"
	if line := keyLine(k, src); line > 0 {
		msg += " (line " + strconv.Itoa(line) + ")"
	}
	if want := caseTwin(k); want != "" {
		msg += "; keys are case-sensitive: did you mean " + want + "?"
	}
	return msg
}

// caseTwin returns the documented spelling of a key that differs only in
// case, or "".
func caseTwin(k toml.Key) string {
	path := k.String()
	for known := range knownKeys {
		if strings.EqualFold(known, path) && strings.Count(known, ".") == len(k)-1 {
			return known
		}
	}
	return ""
}

// keyLine finds the line of src where k is written: the table header or
// key line whose full path (the current table's path followed by the
// line's dotted key) starts with k, or 0. BurntSushi/toml's MetaData has no
// position of keys, so this is a small line scanner: it follows [table]
// and [[array]] headers, so the same wrong key in two tables gets each its
// own line. A key inside an inline table falls back to a textual search
// for its last part.
func keyLine(k toml.Key, src []byte) int {
	var table []string
	for i, line := range bytes.Split(src, []byte("\n")) {
		code := strings.TrimSpace(string(line))
		if j := strings.IndexByte(code, '#'); j >= 0 {
			code = strings.TrimSpace(code[:j])
		}
		var path []string
		switch {
		case strings.HasPrefix(code, "["):
			name := strings.TrimSuffix(strings.TrimSuffix(strings.TrimLeft(code, "["), "]"), "]")
			table = splitKey(name)
			path = table
		case strings.Contains(code, "="):
			key, _, _ := strings.Cut(code, "=")
			path = append(slices.Clip(table), splitKey(key)...)
		default:
			continue
		}
		if len(path) >= len(k) && slices.Equal(path[:len(k)], []string(k)) {
			return i + 1
		}
	}
	return textLine(k[len(k)-1], src)
}

// splitKey splits a dotted TOML key ("a . 'b.c'") into its parts, without
// quotes.
func splitKey(s string) []string {
	var parts []string
	var cur strings.Builder
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			cur.WriteByte(c)
		case c == '"' || c == '\'':
			quote = c
		case c == '.':
			parts = append(parts, strings.TrimSpace(cur.String()))
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	return append(parts, strings.TrimSpace(cur.String()))
}

// textLine finds the first line of src where name is written as a key or
// table name, or 0.
func textLine(last string, src []byte) int {
	name := regexp.QuoteMeta(last)
	re := regexp.MustCompile(`(^|[\[\s.{,])("` + name + `"|'` + name + `'|` + name + `)\s*(=|\]|\.)`)
	for i, line := range bytes.Split(src, []byte("\n")) {
		code := line
		if j := bytes.IndexByte(code, '#'); j >= 0 {
			code = code[:j]
		}
		if re.Match(code) {
			return i + 1
		}
	}
	return 0
}
