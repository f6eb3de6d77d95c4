package config

import (
	"strings"
	"testing"
)

func TestTLSValidate(t *testing.T) {
	tests := []struct {
		name, toml string
		want       string // "" = valid
	}{
		{"default auto", "", ""},
		{"off", "[tls]\nlisten = \"\"\nauto = false", ""},
		{"own files", "[tls]\nauto = false\ncert_file = \"/c.pem\"\nkey_file = \"/k.pem\"", ""},
		{"files with auto", "[tls]\ncert_file = \"/c.pem\"\nkey_file = \"/k.pem\"", "tls.auto = true: must be false"},
		{"nothing to serve", "[tls]\nauto = false", "tls.listen = \":8443\": needs tls.auto"},
		{"key without cert", "[tls]\nauto = false\nkey_file = \"/k.pem\"", "tls.cert_file = \"\": must be set with tls.key_file"},
		{"cert without key", "[tls]\nauto = false\ncert_file = \"/c.pem\"", "tls.key_file = \"\": must be set with tls.cert_file"},
		{"same port as http", "[tls]\nlisten = \":8079\"", "must not use the port of http.listen"},
		{"bad listen", "[tls]\nlisten = \"8443\"", "tls.listen = \"8443\": must be host:port"},
		{"typo", "[tls]\nautos = true", "tls.autos"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tt.toml), "t.toml")
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Parse = %v, want ok", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Parse = %v, want %q", err, tt.want)
			}
		})
	}
}
