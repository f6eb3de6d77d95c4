package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"possync/appliance/tlscert"
)

var httpsRE = regexp.MustCompile(`msg="possync serving" listen=\S+ https=(\S+)`)

// TestServeHTTPS: `possync serve` in a child makes a local CA in its data
// dir, serves HTTPS with a certificate for 127.0.0.1 signed by it, and
// `possync cert` writes that CA and prints its fingerprint.
func TestServeHTTPS(t *testing.T) {
	dir := t.TempDir()
	c := startChild(t, dir)
	m := httpsRE.FindStringSubmatch(c.logs.String())
	if m == nil {
		t.Fatalf("no https address in the logs:\n%s", c.logs)
	}
	out := filepath.Join(t.TempDir(), "ca.crt")
	stdout, stderr, code := runCLI(t, "cert", "-data", dir, "-out", out)
	if code != 0 {
		t.Fatalf("possync cert = %d: %s", code, stderr)
	}
	pemBytes, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatalf("cert wrote no certificate: %q", pemBytes)
	}
	b, _ := pem.Decode(pemBytes)
	if fp := tlscert.Fingerprint(b.Bytes); !strings.Contains(stdout, fp) {
		t.Errorf("cert printed %q, want fingerprint %s", stdout, fp)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get("https://" + m[1] + "/healthz")
	if err != nil {
		t.Fatalf("https with the CA from possync cert: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("https /healthz = %d", resp.StatusCode)
	}
	st, err := os.Stat(filepath.Join(dir, "tls", "ca.key"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("ca.key: %v, mode %v; want 0600", err, st.Mode().Perm())
	}
}

// TestBadTLSSettings: a missing file, a key that does not match, an
// expired certificate stop `serve` and fail `check-config`, each naming
// the key and the file.
func TestBadTLSSettings(t *testing.T) {
	dir := t.TempDir()
	goodCert, goodKey := writePair(t, dir, "good", time.Now().Add(-time.Hour), time.Now().AddDate(1, 0, 0))
	oldCert, oldKey := writePair(t, dir, "old", time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC))
	tests := []struct {
		name, cert, key string
		want            []string
	}{
		{"missing cert", filepath.Join(dir, "none.crt"), goodKey, []string{"tls.cert_file", "none.crt"}},
		{"missing key", goodCert, filepath.Join(dir, "none.key"), []string{"tls.key_file", "none.key"}},
		{"key not matching", goodCert, oldKey, []string{"tls.key_file", "old.key", "tls.cert_file", "good.crt"}},
		{"expired", oldCert, oldKey, []string{"tls.cert_file", "old.crt", "expired"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "possync.toml")
			toml := "[storage]\ndir = \"" + t.TempDir() + "\"\n[tls]\nlisten = \"127.0.0.1:0\"\nauto = false\ncert_file = \"" + tt.cert + "\"\nkey_file = \"" + tt.key + "\"\n"
			if err := os.WriteFile(path, []byte(toml), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, args := range [][]string{{"check-config", "-config", path}, {"serve", "-config", path, "-listen", "127.0.0.1:0", "-mdns=false"}} {
				_, stderr, code := runCLI(t, args...)
				if code != 1 {
					t.Errorf("%s = exit %d, want 1 (%s)", args[0], code, stderr)
				}
				for _, w := range tt.want {
					if !strings.Contains(stderr, w) {
						t.Errorf("%s said %q, want it to name %q", args[0], stderr, w)
					}
				}
			}
		})
	}
	path := filepath.Join(t.TempDir(), "ok.toml")
	os.WriteFile(path, []byte("[tls]\nauto = false\ncert_file = \""+goodCert+"\"\nkey_file = \""+goodKey+"\"\n"), 0o600)
	if _, stderr, code := runCLI(t, "check-config", "-config", path); code != 0 {
		t.Errorf("check-config with a good pair = %d: %s", code, stderr)
	}
}

func writePair(t *testing.T, dir, name string, from, to time.Time) (string, string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: from, NotAfter: to, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	c, k := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	os.WriteFile(c, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(k, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return c, k
}
