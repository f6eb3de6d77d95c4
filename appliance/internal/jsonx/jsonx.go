// Package jsonx holds small JSON encoding helpers shared by the engine and
// the HTTP layer.
package jsonx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// AppendString appends s as a JSON string, escaping as JavaScript's
// JSON.stringify does (no HTML escaping), so channel names built here match
// the browser's byte for byte.
func AppendString(dst []byte, s string) []byte {
	simple := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			simple = false
			break
		}
	}
	if simple {
		dst = append(dst, '"')
		dst = append(dst, s...)
		return append(dst, '"')
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return append(dst, bytes.TrimRight(buf.Bytes(), "\n")...)
}

// ErrorAt returns err's text and, when err is a JSON syntax error, where
// in what (e.g. "params") it stopped: "invalid character '}' in literal
// true (expecting 'e') at byte 8 of params" (0-based, as the "not valid
// UTF-8 at byte N" errors count).
func ErrorAt(err error, what string) string {
	var se *json.SyntaxError
	if errors.As(err, &se) && se.Offset > 0 {
		return fmt.Sprintf("%v at byte %d of %s", err, se.Offset-1, what)
	}
	return err.Error()
}
