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
// readable, the key matching the certificate, not expired at now. Errors
// name the config key and the file. A certificate not yet valid at now is
// returned with an error wrapping ErrNotYetValid: serve it and warn.
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
	pair.Leaf = leaf
	if now.Before(leaf.NotBefore) {
		// A Pi has no battery-backed clock: until network time answers it
		// may run years behind, and a certificate issued last week looks
		// "not yet valid". The tills judge it by their own clocks, so the
		// pair is served and the caller only warns.
		return &pair, fmt.Errorf("tls.cert_file %s: certificate not valid before %s (clock says %s): %w", certFile,
			leaf.NotBefore.UTC().Format(time.DateOnly), now.UTC().Format(time.DateOnly), ErrNotYetValid)
	}
	return &pair, nil
}

// ErrNotYetValid marks a key pair that LoadFiles returns together with an
// error: the certificate's NotBefore is after the box's clock, which on a
// box without a real-time clock usually means the clock is behind.
var ErrNotYetValid = errors.New("the box's clock may be behind; serving it anyway")
