package config

import (
	"bytes"
	"reflect"
	"regexp"
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

// keyLine finds the first line of src where the last part of k is written
// as a key or table name, or 0. TOML has no position information for keys in
// BurntSushi/toml's MetaData, so this is a textual search: good enough to
// point a person at the right line.
func keyLine(k toml.Key, src []byte) int {
	last := k[len(k)-1]
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
