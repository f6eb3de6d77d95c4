package tlscert_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"possync/appliance/tlscert"
)

// TestValidityIndependentOfClock: the windows are constants, so whatever
// the box's clock said when it issued them, a till whose clock is right
// (or itself years off, within 2000..2099) verifies the chain.
func TestValidityIndependentOfClock(t *testing.T) {
	dir := t.TempDir()
	a, err := tlscert.NewAuto(dir, "shop", []string{"possync.local", "shop.local"}, []net.IP{net.IPv4(127, 0, 0, 1), net.ParseIP("192.168.1.50")})
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := a.GetCertificate(nil)
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(a.CA().Cert)
	now := time.Now()
	for _, at := range []time.Time{now, now.AddDate(-5, 0, 0), now.AddDate(10, 0, 0), time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2070, 6, 1, 0, 0, 0, 0, time.UTC)} {
		for _, name := range []string{"possync.local", "shop.local", "127.0.0.1", "192.168.1.50"} {
			if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: pool, CurrentTime: at}); err != nil {
				t.Errorf("Verify(%s at %s) = %v, want ok", name, at.Format(time.DateOnly), err)
			}
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "other.local", Roots: pool}); err == nil {
		t.Error("Verify(other.local) = ok, want a name mismatch")
	}
	if !leaf.NotBefore.Equal(tlscert.LeafNotBefore) || !leaf.NotAfter.Equal(tlscert.LeafNotAfter) {
		t.Errorf("leaf window = %v..%v, want the fixed window", leaf.NotBefore, leaf.NotAfter)
	}
	if leaf.NotBefore.After(time.Date(2019, 7, 1, 0, 0, 0, 0, time.UTC)) {
		t.Error("leaf NotBefore is not before Apple's 825-day rule (2019-07-01)")
	}
	if _, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok {
		t.Errorf("leaf key %T, want ECDSA", leaf.PublicKey)
	}
}

func TestFilesKeptAndPrivate(t *testing.T) {
	dir := t.TempDir()
	a, err := tlscert.NewAuto(dir, "", []string{"possync.local"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{tlscert.CAFile, tlscert.CAKeyFile, tlscert.ServerFile, tlscert.ServerKey} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", f, st.Mode().Perm())
		}
	}
	if strings.Contains(string(a.CA().PEM), "PRIVATE") {
		t.Error("CA PEM holds a private key")
	}
	b, err := tlscert.NewAuto(dir, "", []string{"possync.local"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.CA().Fingerprint() != b.CA().Fingerprint() {
		t.Error("restart made a new CA, want the kept one")
	}
}

func TestUpdateReissuesOnChange(t *testing.T) {
	a, err := tlscert.NewAuto(t.TempDir(), "", []string{"possync.local", "b.local"}, []net.IP{net.ParseIP("10.0.0.2"), net.ParseIP("10.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	first, _ := a.GetCertificate(nil)
	changed, err := a.Update([]string{"b.local", "POSSYNC.local."}, []net.IP{net.ParseIP("10.0.0.1"), net.ParseIP("10.0.0.2")})
	if err != nil || changed {
		t.Fatalf("Update(same, reordered) = %v, %v; want false, nil", changed, err)
	}
	changed, err = a.Update([]string{"possync.local", "b.local"}, []net.IP{net.ParseIP("10.0.0.3")})
	if err != nil || !changed {
		t.Fatalf("Update(new address) = %v, %v; want true, nil", changed, err)
	}
	second, _ := a.GetCertificate(nil)
	if first == second {
		t.Fatal("certificate not replaced")
	}
	leaf, _ := x509.ParseCertificate(second.Certificate[0])
	if len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(net.ParseIP("10.0.0.3")) {
		t.Errorf("IPs = %v, want [10.0.0.3]", leaf.IPAddresses)
	}
}

// A box whose clock is behind (no RTC, no network time yet) still serves
// an operator's certificate that looks "not yet valid": the tills judge it
// by their own clocks.
func TestLoadFilesClockBehind(t *testing.T) {
	dir := t.TempDir()
	if _, err := tlscert.NewAuto(dir, "", []string{"possync.local"}, nil); err != nil {
		t.Fatal(err)
	}
	cert, key := filepath.Join(dir, tlscert.ServerFile), filepath.Join(dir, tlscert.ServerKey)
	early := time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC) // before the certificate's NotBefore
	pair, err := tlscert.LoadFiles(cert, key, early)
	if pair == nil || !errors.Is(err, tlscert.ErrNotYetValid) || !strings.Contains(err.Error(), "tls.cert_file") {
		t.Fatalf("LoadFiles(clock in 2010) = %v, %v; want the pair and an ErrNotYetValid warning naming tls.cert_file", pair, err)
	}
}

func TestLoadFilesErrors(t *testing.T) {
	dir := t.TempDir()
	a, err := tlscert.NewAuto(dir, "", []string{"possync.local"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = a
	cert, key := filepath.Join(dir, tlscert.ServerFile), filepath.Join(dir, tlscert.ServerKey)
	expired, expiredKey := writeExpired(t, dir)
	tests := []struct {
		name, cert, key string
		want            []string
	}{
		{"ok", cert, key, nil},
		{"missing cert", filepath.Join(dir, "nope.crt"), key, []string{"tls.cert_file", "nope.crt"}},
		{"missing key", cert, filepath.Join(dir, "nope.key"), []string{"tls.key_file", "nope.key"}},
		{"key not matching", cert, filepath.Join(dir, tlscert.CAKeyFile), []string{"tls.key_file", tlscert.CAKeyFile, "does not go with", tlscert.ServerFile}},
		{"expired", expired, expiredKey, []string{"tls.cert_file", "expired.crt", "expired on 2021-01-01"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tlscert.LoadFiles(tt.cert, tt.key, time.Now())
			if tt.want == nil {
				if err != nil {
					t.Fatalf("LoadFiles = %v, want ok", err)
				}
				return
			}
			if err == nil {
				t.Fatal("LoadFiles = ok, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("LoadFiles = %q, want it to name %q", err, w)
				}
			}
		})
	}
}

func writeExpired(t *testing.T, dir string) (string, string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "old"},
		NotBefore: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	c, k := filepath.Join(dir, "expired.crt"), filepath.Join(dir, "expired.key")
	_ = os.WriteFile(c, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(k, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return c, k
}

// The server certificate's common name is what a till's certificate viewer
// shows first: the box's .local name, not "localhost" (first when sorted).
func TestLeafCommonName(t *testing.T) {
	a, err := tlscert.NewAuto(t.TempDir(), "", []string{"localhost", "possync-1a2b3c.local", "possync.local"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := a.GetCertificate(nil)
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if leaf.Subject.CommonName != "possync.local" {
		t.Errorf("CN = %q, want possync.local", leaf.Subject.CommonName)
	}
}
