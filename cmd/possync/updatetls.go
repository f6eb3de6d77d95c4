package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
)

// The admin token is a bearer token (RFC 6750): whoever sees it can
// install bundles the box's keyring accepts, and reboot the box. Over
// http:// it crosses the shop's LAN in clear text; over https:// (the
// box's :8443) it is protected once the client trusts the box's own CA,
// which is what -ca gives it.

// updateTLS returns the TLS settings for box: for an https:// box with
// caFile, a pool holding only the certificates in caFile (PEM); nil
// otherwise (the system's roots). It warns on w when the token would
// cross a network in clear text.
func updateTLS(box, caFile string, w io.Writer) (*tls.Config, error) {
	u, err := url.Parse(box)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("update: -box %q is not an http:// or https:// URL", box)
	}
	if u.Scheme == "http" {
		if caFile != "" {
			return nil, fmt.Errorf("update: -ca goes with an https:// box (its port 8443), not %s", box)
		}
		if ip := net.ParseIP(u.Hostname()); u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
			fmt.Fprintf(w, "update: warning: the admin token goes to %s in clear text; -box https://%s:8443 -ca ca.crt protects it (README, \"Update it\")\n", box, u.Hostname())
		}
		return nil, nil
	}
	if caFile == "" {
		return nil, nil
	}
	pemBytes, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("update: -ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("update: -ca %s holds no PEM certificate (want the box's ca.crt)", caFile)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// untrustedHint explains a certificate the client could not verify (the
// x509 error under the *url.Error and *tls.CertificateVerificationError
// that net/http returns), or returns "".
func untrustedHint(err error) string {
	var uerr x509.UnknownAuthorityError
	var herr x509.HostnameError
	switch {
	case errors.As(err, &uerr):
		return " (the box's certificate is signed by its own CA: pass -ca with that CA, from `possync cert -out ca.crt` on the box or http://<box>:8079/ca.crt, its SHA-256 fingerprint checked against the ca_sha256 the box logs at start)"
	case errors.As(err, &herr):
		return " (the certificate does not name this host: use the name or address the box's certificate lists, e.g. possync.local or its LAN address)"
	}
	return ""
}
