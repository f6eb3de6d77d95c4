package discovery

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
)

func TestEncodeTXT(t *testing.T) {
	tests := []struct {
		name    string
		in      TXT
		want    []string
		wantErr error
	}{
		{
			name: "all keys in fixed order",
			in:   TXT{Version: "1.2.0", ID: "0123456789abcdef", Path: "/", API: API, Scheme: "http"},
			want: []string{"version=1.2.0", "id=0123456789abcdef", "path=/", "api=pos_multi_session_sync/12", "scheme=http"},
		},
		{
			name: "empty values left out, extra sorted",
			in:   TXT{Path: "/", Extra: map[string]string{"zz": "1", "aa": "2"}},
			want: []string{"path=/", "aa=2", "zz=1"},
		},
		{
			name: "254 bytes fit",
			in:   TXT{Version: strings.Repeat("v", 254-len("version="))},
			want: []string{"version=" + strings.Repeat("v", 254-len("version="))},
		},
		{
			name:    "255 bytes do not",
			in:      TXT{Version: strings.Repeat("v", 255-len("version="))},
			wantErr: ErrTXTTooLong,
		},
		{
			name:    "key with =",
			in:      TXT{Extra: map[string]string{"a=b": "c"}},
			wantErr: errors.New("any"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := EncodeTXT(tt.in)
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("EncodeTXT(%+v) = %q, want error", tt.in, got)
				}
				if errors.Is(tt.wantErr, ErrTXTTooLong) && !errors.Is(err, ErrTXTTooLong) {
					t.Fatalf("EncodeTXT error = %v, want %v", err, ErrTXTTooLong)
				}
				return
			}
			if err != nil {
				t.Fatalf("EncodeTXT(%+v): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("EncodeTXT(%+v) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestDecodeTXT(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want TXT
	}{
		{
			name: "known keys",
			in:   []string{"version=1.2.0", "id=0123456789abcdef", "path=/", "api=pos_multi_session_sync/12", "scheme=https"},
			want: TXT{Version: "1.2.0", ID: "0123456789abcdef", Path: "/", API: API, Scheme: "https"},
		},
		{
			name: "keys are case-insensitive, first wins",
			in:   []string{"Version=1", "VERSION=2", "version=3"},
			want: TXT{Version: "1"},
		},
		{
			name: "boolean attributes and empty keys ignored, values may hold =",
			in:   []string{"flag", "=x", "path=/a=b", "Color=red"},
			want: TXT{Path: "/a=b", Extra: map[string]string{"color": "red"}},
		},
		{name: "nothing", in: nil, want: TXT{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, DecodeTXT(tt.in)); diff != "" {
				t.Errorf("DecodeTXT(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestTXTRoundTrip(t *testing.T) {
	in := TXT{Version: "1.0", ID: "0123456789abcdef", Path: "/", API: API, Scheme: "http", Extra: map[string]string{"note": `a "quoted" \ café`}}
	strs, err := EncodeTXT(in)
	if err != nil {
		t.Fatal(err)
	}
	// Through miekg/dns as zeroconf uses it: escaped in, escaped out.
	rr := &dns.TXT{Hdr: dns.RR_Header{Name: "x.local.", Rrtype: dns.TypeTXT, Class: dns.ClassINET}, Txt: escapeTXT(strs)}
	got := unpackRR(t, rr).(*dns.TXT)
	if diff := cmp.Diff(in, DecodeTXT(unescapeTXT(got.Txt))); diff != "" {
		t.Errorf("TXT after pack/unpack (-want +got):\n%s", diff)
	}
}

func TestEscapeLabelRoundTrip(t *testing.T) {
	for _, name := range []string{"possync-3d1219", "Shop 1", "Café de l'Olivier", "a.b\\c", `semi;colon (x) @"q"`} {
		t.Run(name, func(t *testing.T) {
			fqdn := escapeLabel(name) + "._possync._tcp.local."
			if _, ok := dns.IsDomainName(fqdn); !ok {
				t.Fatalf("escapeLabel(%q) = %q: not a domain name", name, fqdn)
			}
			rr := &dns.PTR{Hdr: dns.RR_Header{Name: "_possync._tcp.local.", Rrtype: dns.TypePTR, Class: dns.ClassINET}, Ptr: fqdn}
			got := unpackRR(t, rr).(*dns.PTR).Ptr
			if n := dns.CountLabel(got); n != 4 {
				t.Fatalf("%q has %d labels, want 4", got, n)
			}
			label := strings.TrimSuffix(got, "._possync._tcp.local.")
			if u := unescape(label); u != name {
				t.Errorf("unescape(%q) = %q, want %q", label, u, name)
			}
		})
	}
}

func TestUnescape(t *testing.T) {
	tests := []struct{ in, want string }{
		{`plain`, `plain`},
		{`a\ b`, `a b`},
		{`caf\195\169`, "café"},
		{`\\x`, `\x`},
		{`trailing\`, `trailing\`},
		{`\999`, `999`},
	}
	for _, tt := range tests {
		if got := unescape(tt.in); got != tt.want {
			t.Errorf("unescape(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// unpackRR packs rr into a message and unpacks it again, as a peer sees it.
func unpackRR(t *testing.T, rr dns.RR) dns.RR {
	t.Helper()
	m := new(dns.Msg)
	m.Response = true
	m.Answer = []dns.RR{rr}
	b, err := m.Pack()
	if err != nil {
		t.Fatalf("pack %v: %v", rr, err)
	}
	var out dns.Msg
	if err := out.Unpack(b); err != nil {
		t.Fatalf("unpack: %v", err)
	}
	return out.Answer[0]
}
