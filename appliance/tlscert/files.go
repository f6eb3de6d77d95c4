package tlscert

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"
)

// LoadFiles loads an operator-supplied key pair and checks it: both files
// readable, the key matching the certificate, the certificate valid at now.
// Errors name the config key and the file.
func LoadFiles(certFile, keyFile string, now time.Time) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("tls.cert_file %s: %w", certFile, err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls.key_file %s: %w", keyFile, err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("tls.key_file %s does not go with tls.cert_file %s: %w", keyFile, certFile, err)
	}
	if len(pair.Certificate) == 0 {
		return nil, fmt.Errorf("tls.cert_file %s: %w", certFile, errors.New("no certificate"))
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("tls.cert_file %s: %w", certFile, err)
	}
	if now.After(leaf.NotAfter) {
		return nil, fmt.Errorf("tls.cert_file %s: certificate expired on %s (clock says %s)", certFile,
			leaf.NotAfter.UTC().Format(time.DateOnly), now.UTC().Format(time.DateOnly))
	}
	if now.Before(leaf.NotBefore) {
		return nil, fmt.Errorf("tls.cert_file %s: certificate not valid before %s (clock says %s)", certFile,
			leaf.NotBefore.UTC().Format(time.DateOnly), now.UTC().Format(time.DateOnly))
	}
	pair.Leaf = leaf
	return &pair, nil
}
