package discovery

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// TXT keys published with the _possync._tcp service (see doc.go).
const (
	KeyVersion = "version"
	KeyID      = "id"
	KeyPath    = "path"
	KeyAPI     = "api"
	KeyScheme  = "scheme"
)

// API is the value of the api TXT key: the Odoo module whose protocol the
// box speaks.
const API = "pos_multi_session_sync/12"

// maxTXTString is the longest key=value string a TXT record can carry: its
// length is one byte on the wire.
const maxTXTString = 255

// ErrTXTTooLong reports a key=value pair that does not fit one TXT string.
var ErrTXTTooLong = errors.New("txt string longer than 255 bytes")

// TXT is the metadata a box publishes in its DNS-SD TXT record.
type TXT struct {
	Version string // possync version, e.g. "1.2.0" or "dev"
	ID      string // stable box id (hex), also the tail of the default instance name
	Path    string // URL path of the Sync Server, "/"
	API     string // protocol, API
	Scheme  string // "http" or "https"

	// Extra holds keys this version does not know, lower-cased.
	Extra map[string]string
}

// EncodeTXT returns the TXT strings for t in a fixed order (known keys first,
// then Extra sorted by key). Empty values are left out. A pair of 255 bytes or
// more is an error, since the wire format cannot carry it.
func EncodeTXT(t TXT) ([]string, error) {
	pairs := [][2]string{
		{KeyVersion, t.Version},
		{KeyID, t.ID},
		{KeyPath, t.Path},
		{KeyAPI, t.API},
		{KeyScheme, t.Scheme},
	}
	extra := make([]string, 0, len(t.Extra))
	for k := range t.Extra {
		extra = append(extra, k)
	}
	sort.Strings(extra)
	for _, k := range extra {
		pairs = append(pairs, [2]string{k, t.Extra[k]})
	}
	out := make([]string, 0, len(pairs))
	for _, p := range pairs {
		if p[1] == "" {
			continue
		}
		if p[0] == "" || strings.Contains(p[0], "=") {
			return nil, fmt.Errorf("txt key %q: must be non-empty and without '='", p[0])
		}
		s := p[0] + "=" + p[1]
		if len(s) >= maxTXTString {
			return nil, fmt.Errorf("txt %s: %d bytes: %w", p[0], len(s), ErrTXTTooLong)
		}
		out = append(out, s)
	}
	return out, nil
}

// DecodeTXT parses TXT strings as sent on the wire (not escaped). Keys are
// case-insensitive and the first occurrence of a key wins (RFC 6763 6.4);
// strings without '=' are boolean attributes and are ignored.
func DecodeTXT(strs []string) TXT {
	var t TXT
	seen := make(map[string]bool, len(strs))
	for _, s := range strs {
		k, v, ok := strings.Cut(s, "=")
		k = strings.ToLower(k)
		if !ok || k == "" || seen[k] {
			continue
		}
		seen[k] = true
		switch k {
		case KeyVersion:
			t.Version = v
		case KeyID:
			t.ID = v
		case KeyPath:
			t.Path = v
		case KeyAPI:
			t.API = v
		case KeyScheme:
			t.Scheme = v
		default:
			if t.Extra == nil {
				t.Extra = make(map[string]string)
			}
			t.Extra[k] = v
		}
	}
	return t
}

// miekg/dns keeps TXT strings and names in presentation format: on the way
// in, `\X` and `\DDD` are escapes; on the way out, quotes, backslashes and
// bytes outside printable ASCII come back escaped. zeroconf passes both
// through untouched, so the helpers below translate at that boundary.

// escapeTXT turns raw TXT strings into the form miekg/dns packs verbatim.
func escapeTXT(raw []string) []string {
	out := make([]string, len(raw))
	for i, s := range raw {
		out[i] = strings.ReplaceAll(s, `\`, `\\`)
	}
	return out
}

// unescapeTXT turns TXT strings as miekg/dns unpacks them back into raw bytes.
func unescapeTXT(strs []string) []string {
	out := make([]string, len(strs))
	for i, s := range strs {
		out[i] = unescape(s)
	}
	return out
}

// escapeLabel escapes a raw DNS label (an instance name may hold spaces,
// dots and UTF-8) so that miekg/dns packs it as one label.
func escapeLabel(raw string) string {
	var b strings.Builder
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == '.' || c == '\\' || c == '"' || c == '(' || c == ')' || c == ';' || c == '@' || c == ' ' || c == '\'':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < ' ' || c > '~':
			fmt.Fprintf(&b, `\%03d`, c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// unescape decodes the `\X` and `\DDD` escapes of the DNS presentation format.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		if i+3 < len(s) && isDigit(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]) {
			n := int(s[i+1]-'0')*100 + int(s[i+2]-'0')*10 + int(s[i+3]-'0')
			if n < 256 {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i+1])
		i++
	}
	return b.String()
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
