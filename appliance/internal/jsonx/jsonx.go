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

// SkipSpace returns the index of the first byte of b at or after i that is
// not JSON whitespace (RFC 8259 §2).
func SkipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// StringEnd returns the index just past the JSON string whose opening
// quote is b[i], or -1 if it does not end. Escapes are skipped, not
// checked.
func StringEnd(b []byte, i int) int {
	for k := i + 1; k < len(b); k++ {
		switch b[k] {
		case '\\':
			k++
		case '"':
			return k + 1
		}
	}
	return -1
}

// ValueEnd returns the index just past the JSON value starting at b[i]: a
// string, an object or array (brackets balanced outside strings, their
// kinds not matched), or a scalar up to the next delimiter or whitespace.
// It delimits without validating: on valid JSON it finds the value's end;
// on anything else the caller must validate what it gets. It returns -1
// when the value does not end or is empty.
func ValueEnd(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return StringEnd(b, i)
	case '{', '[':
		depth := 0
		for k := i; k < len(b); k++ {
			switch b[k] {
			case '"':
				e := StringEnd(b, k)
				if e < 0 {
					return -1
				}
				k = e - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return k + 1
				}
			}
		}
		return -1
	}
	k := i
	for k < len(b) {
		switch b[k] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			if k == i {
				return -1
			}
			return k
		}
		k++
	}
	return k
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
