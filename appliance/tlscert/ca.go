// Package tlscert makes and keeps possync's local certificate authority and
// the server certificate it issues for the box's names and addresses, and
// loads operator-supplied key pairs. Standard library only.
//
// Validity windows do not depend on the box's clock (a Pi has no battery
// and may boot years off): every certificate gets the same fixed window,
// see the window variables.
package tlscert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Fixed validity windows, the same whatever the box's clock says.
//
//   - The CA: 2000-01-01 to 2099-12-31, so a till with a right clock
//     accepts it whatever year the box thought it was when it made it.
//   - The server certificate: NotBefore 2019-06-01, NotAfter 2099-12-31.
//     Chrome and Firefox put no lifetime cap on certificates under a
//     user-installed root. Apple (iOS 13 / macOS 10.15) rejects TLS server
//     certificates valid for more than 825 days, for private roots too, but
//     only those *issued* (NotBefore) on or after 2019-07-01; a NotBefore
//     before that date keeps the leaf outside the rule. Apple's 398-day rule
//     (2020) applies to publicly trusted roots only.
var (
	CANotBefore   = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	CANotAfter    = time.Date(2099, 12, 31, 23, 59, 59, 0, time.UTC)
	LeafNotBefore = time.Date(2019, 6, 1, 0, 0, 0, 0, time.UTC)
	LeafNotAfter  = time.Date(2099, 12, 31, 23, 59, 59, 0, time.UTC)
)

// File names inside the TLS directory (Dir).
const (
	CAFile     = "ca.crt"
	CAKeyFile  = "ca.key"
	ServerFile = "server.crt"
	ServerKey  = "server.key"
)

// Dir is the directory under the data directory that holds the files.
func Dir(dataDir string) string { return filepath.Join(dataDir, "tls") }

// CA is the box's local certificate authority.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	PEM  []byte // the certificate, PEM; safe to serve
}

// Fingerprint is the SHA-256 of the CA certificate, as colon-separated hex.
func (ca *CA) Fingerprint() string { return Fingerprint(ca.Cert.Raw) }

// Fingerprint formats the SHA-256 of der as AA:BB:….
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

// LoadOrCreateCA reads the CA from dir, or creates it (ECDSA P-256, files
// mode 0600) when neither file exists.
func LoadOrCreateCA(dir, name string) (*CA, error) {
	certPath, keyPath := filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile)
	certPEM, cerr := os.ReadFile(certPath)
	keyPEM, kerr := os.ReadFile(keyPath)
	switch {
	case cerr == nil && kerr == nil:
		return parseCA(certPEM, keyPEM, certPath, keyPath)
	case errors.Is(cerr, fs.ErrNotExist) && errors.Is(kerr, fs.ErrNotExist):
	case cerr != nil && !errors.Is(cerr, fs.ErrNotExist):
		return nil, fmt.Errorf("read CA certificate: %w", cerr)
	case kerr != nil && !errors.Is(kerr, fs.ErrNotExist):
		return nil, fmt.Errorf("read CA key: %w", kerr)
	default:
		return nil, fmt.Errorf("CA in %s: one of %s and %s is missing; remove the other to make a new CA", dir, CAFile, CAKeyFile)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create tls dir: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	if name == "" {
		name = "possync"
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randSerial(),
		Subject:               pkix.Name{CommonName: name + " local CA", Organization: []string{"possync"}},
		NotBefore:             CANotBefore,
		NotAfter:              CANotAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode CA key: %w", err)
	}
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	if err := writeFile(keyPath, keyPEM); err != nil {
		return nil, err
	}
	if err := writeFile(certPath, certPEM); err != nil {
		return nil, err
	}
	return parseCA(certPEM, keyPEM, certPath, keyPath)
}

func parseCA(certPEM, keyPEM []byte, certPath, keyPath string) (*CA, error) {
	b, _ := pem.Decode(certPEM)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("CA certificate %s: no PEM CERTIFICATE block", certPath)
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("CA certificate %s: %w", certPath, err)
	}
	k, _ := pem.Decode(keyPEM)
	if k == nil {
		return nil, fmt.Errorf("CA key %s: no PEM block", keyPath)
	}
	key, err := x509.ParseECPrivateKey(k.Bytes)
	if err != nil {
		return nil, fmt.Errorf("CA key %s: %w", keyPath, err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("CA key %s does not match certificate %s", keyPath, certPath)
	}
	return &CA{Cert: cert, Key: key, PEM: certPEM}, nil
}

// writeFile writes data to path, mode 0600, through a temporary file that
// is synced before the rename and the directory after it: without the
// syncs a power cut within the kernel's writeback delay (about 30 s) left
// an empty CA file, and possync could not start again after the reset
// (seen in the QEMU boot test).
func writeFile(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

func randSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil || n.Sign() == 0 {
		return big.NewInt(time.Now().UnixNano())
	}
	return n
}
