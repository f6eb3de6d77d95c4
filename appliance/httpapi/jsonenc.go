package httpapi

import (
	"bytes"
	"log/slog"
	"strconv"

	"possync/appliance/internal/jsonx"
)

const slogDebug = slog.LevelDebug

// appendID writes the request id back as sent (null when absent).
func appendID(dst, id []byte) []byte {
	id = bytes.TrimSpace(id)
	if len(id) == 0 {
		return append(dst, "null"...)
	}
	return append(dst, id...)
}

func appendInt(dst []byte, n int) []byte { return strconv.AppendInt(dst, int64(n), 10) }

// appendJSONString writes s as a JSON string without HTML escaping.
func appendJSONString(dst []byte, s string) []byte { return jsonx.AppendString(dst, s) }
