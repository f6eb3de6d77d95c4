package config

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestExampleMatchesDefault(t *testing.T) {
	cfg, err := Load("../../testdata/possync.example.toml")
	if err != nil {
		t.Fatalf("Load(example) = %v", err)
	}
	if diff := cmp.Diff(Default(), cfg); diff != "" {
		t.Errorf("example config differs from Default() (-default +example):\n%s", diff)
	}
}

// TestExampleListsEveryKey: the example documents every key (decoding it
// over Default alone would not notice a missing one).
func TestExampleListsEveryKey(t *testing.T) {
	b, err := os.ReadFile("../../testdata/possync.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for k := range knownKeys {
		table, leaf, ok := strings.Cut(k, ".")
		if !ok {
			if !strings.Contains(text, "\n["+table+"]\n") {
				t.Errorf("example lacks table [%s]", table)
			}
			continue
		}
		if !strings.Contains(text, "\n"+leaf+" = ") {
			t.Errorf("example lacks key %s", k)
		}
	}
}

func TestEmptyIsDefault(t *testing.T) {
	cfg, err := Parse(strings.NewReader(""), "empty")
	if err != nil {
		t.Fatalf("Parse(\"\") = %v", err)
	}
	if diff := cmp.Diff(Default(), cfg); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestParseOverrides(t *testing.T) {
	cfg, err := Parse(strings.NewReader(`
[http]
listen = "127.0.0.1:9000"
poll_hold = "20s"
[discovery]
enabled = false
interfaces = ["eth0"]
[security]
max_polls_per_client = 0
`), "t")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.Listen != "127.0.0.1:9000" || cfg.HTTP.PollHold.D() != 20*time.Second {
		t.Errorf("http = %+v", cfg.HTTP)
	}
	if cfg.Discovery.Enabled || len(cfg.Discovery.Interfaces) != 1 {
		t.Errorf("discovery = %+v", cfg.Discovery)
	}
	if cfg.Security.MaxPollsPerClient != 0 || Default().Security.MaxPollsPerClient != 32 {
		t.Errorf("security.max_polls_per_client = %d (default %d), want 0 (default 32)", cfg.Security.MaxPollsPerClient, Default().Security.MaxPollsPerClient)
	}
	// The smallest max_conns goes with the default cap (the server lowers it to half of max_conns).
	if _, err := Parse(strings.NewReader("[http]\nmax_conns = 16\n"), "t"); err != nil {
		t.Errorf("max_conns = 16 with the default poll cap: %v", err)
	}
	if cfg.Storage.Dir != Default().Storage.Dir {
		t.Errorf("storage.dir = %q, want default", cfg.Storage.Dir)
	}
}

func TestParseErrorsNameKeys(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // substrings of the error
	}{
		{"unknown key", "[http]\nlisten = \":1\"\npol_hold = \"5s\"\n", []string{"http.pol_hold", "unknown key"}},
		{"unknown table", "[htp]\nlisten = \":1\"\n", []string{"htp", "unknown key"}},
		{"bad duration", "[http]\npoll_hold = \"5 minutes\"\n", []string{"poll_hold", "5 minutes", "not a duration"}},
		{"wrong type", "[http]\nmax_conns = \"many\"\n", []string{"max_conns"}},
		{"hold too long", "[http]\npoll_hold = \"90s\"\n", []string{"http.poll_hold = \"1m30s\"", "55s"}},
		{"bad listen", "[http]\nlisten = \"8079\"\n", []string{"http.listen = \"8079\"", "host:port"}},
		{"bad port", "[http]\nlisten = \":99999\"\n", []string{"http.listen", "65535"}},
		{"short retention", "[bus]\nretention = \"1m\"\n", []string{"bus.retention = \"1m0s\"", "10m"}},
		{"bad level", "[log]\nlevel = \"loud\"\n", []string{"log.level = \"loud\""}},
		{"bad hostname", "[discovery]\nhostname = \"pos.sync\"\n", []string{"discovery.hostname = \"pos.sync\""}},
		{"negative poll cap", "[security]\nmax_polls_per_client = -1\n", []string{"security.max_polls_per_client = -1", "0 (no limit)"}},
		{"bad network", "[security]\nallowed_networks = [\"10.0.0.0/8\", \"192.168.1.5\"]\n", []string{"security.allowed_networks[1] = \"192.168.1.5\"", "CIDR"}},
		{"no network", "[security]\nallowed_networks = []\n", []string{"security.allowed_networks", "0.0.0.0/0"}},
		{"origin with path", "[security]\nallowed_origins = [\"https://shop.example.com/pos/web\"]\n", []string{"security.allowed_origins[0]", "without a path"}},
		{"origin without scheme", "[security]\nallowed_origins = [\"shop.example.com\"]\n", []string{"security.allowed_origins[0]"}},
		{"empty database", "[security]\nallowed_databases = [\"\"]\n", []string{"security.allowed_databases[0]"}},
		{"zero databases", "[security]\nmax_databases = 0\n", []string{"security.max_databases = 0", "from 1"}},
		{"header timeout above read", "[http]\nheader_timeout = \"40s\"\n", []string{"http.header_timeout = \"40s\"", "read_timeout"}},

		{"syntax", "[http\n", []string{"line 2", "table name"}},
		{"several", "[http]\nlisten = \"x\"\nmax_conns = 1\n[log]\nformat = \"xml\"\n", []string{"http.listen", "http.max_conns = 1", "log.format = \"xml\""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tt.in), "test.toml")
			if err == nil {
				t.Fatalf("Parse(%q) = nil error, want one", tt.in)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Parse(%q) error = %q, want it to contain %q", tt.in, err, w)
				}
			}
			if !strings.Contains(err.Error(), "test.toml") {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(t.TempDir() + "/nope.toml")
	if err == nil || !os.IsNotExist(unwrapAll(err)) {
		t.Fatalf("Load(missing) = %v, want not-exist error", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		next := u.Unwrap()
		if next == nil {
			return err
		}
		err = next
	}
}

func TestAdminAndUpdate(t *testing.T) {
	for _, tc := range []struct {
		name, toml string
		want       []string // substrings of the error; none = valid
	}{
		{"token ok", "[admin]\ntoken = \"0123456789abcdef\"\n", nil},
		{"short token", "[admin]\ntoken = \"secret\"\n", []string{"admin.token", "at least 16 bytes"}},
		{"both", "[admin]\ntoken = \"0123456789abcdef\"\ntoken_file = \"/etc/possync/admin.token\"\n", []string{"not both"}},
		{"relative file", "[admin]\ntoken_file = \"admin.token\"\n", []string{"admin.token_file", "absolute"}},
		{"bundle size", "[admin]\nmax_bundle_mib = 0\n", []string{"admin.max_bundle_mib"}},
		{"healthy_within", "[update]\nhealthy_within = \"1s\"\n", []string{"update.healthy_within"}},
		{"reboot", "[update]\nreboot_command = []\n", []string{"update.reboot_command"}},
	} {
		_, err := Parse(strings.NewReader(tc.toml), tc.name)
		if len(tc.want) == 0 {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %v lacks %q", tc.name, err, w)
			}
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: the error shows the token: %v", tc.name, err)
		}
	}
}

func TestLoadToken(t *testing.T) {
	if tok, err := (Admin{}).LoadToken(); tok != nil || err != nil {
		t.Fatalf("off: %q %v", tok, err)
	}
	f := t.TempDir() + "/admin.token"
	os.WriteFile(f, []byte("  0123456789abcdef0123\n"), 0o600)
	if tok, err := (Admin{TokenFile: f}).LoadToken(); string(tok) != "0123456789abcdef0123" || err != nil {
		t.Fatalf("file: %q %v", tok, err)
	}
	os.WriteFile(f, []byte("short\n"), 0o600)
	if _, err := (Admin{TokenFile: f}).LoadToken(); err == nil || !strings.Contains(err.Error(), "at least 16 bytes") {
		t.Fatalf("short file: %v", err)
	}
	// A missing file leaves the endpoint off (the image names a file on
	// the FAT partition that may not be there).
	if tok, err := (Admin{TokenFile: f + ".missing"}).LoadToken(); tok != nil || err != nil {
		t.Fatalf("missing file: %q %v, want off", tok, err)
	}
	if !(Admin{TokenFile: f + ".missing"}).TokenFileMissing() || (Admin{TokenFile: f}).TokenFileMissing() {
		t.Fatal("TokenFileMissing wrong")
	}
	// A file that exists but cannot be read is an error, not "off".
	if os.Getuid() != 0 {
		os.Chmod(f, 0)
		if _, err := (Admin{TokenFile: f}).LoadToken(); err == nil {
			t.Fatal("unreadable file accepted")
		}
	}
	if _, err := (Admin{TokenFile: t.TempDir()}).LoadToken(); err == nil {
		t.Fatal("a directory as token file accepted")
	}
}

// The image names a token file on the card's FAT partition, written on a
// PC: a UTF-8 byte order mark and CRLF (Notepad) are not part of the
// token, and a token with a line break or control character inside, which
// no client can send in a header, is refused naming the file.
func TestLoadTokenFromAPC(t *testing.T) {
	f := t.TempDir() + "/possync-admin.token"
	os.WriteFile(f, []byte("\ufeff0123456789abcdef0123\r\n"), 0o600)
	if tok, err := (Admin{TokenFile: f}).LoadToken(); string(tok) != "0123456789abcdef0123" || err != nil {
		t.Fatalf("BOM and CRLF: %q %v", tok, err)
	}
	for _, bad := range []string{"0123456789abcdef\n0123456789abcdef\n", "0123456789\x00abcdef0123"} {
		os.WriteFile(f, []byte(bad), 0o600)
		if _, err := (Admin{TokenFile: f}).LoadToken(); err == nil || !strings.Contains(err.Error(), f) || !strings.Contains(err.Error(), "one line") {
			t.Errorf("token %q: %v, want an error naming the file and 'one line'", bad, err)
		}
	}
}
