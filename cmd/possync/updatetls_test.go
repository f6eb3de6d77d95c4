package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"possync/appliance/update/updatetest"
)

// possync update over HTTPS against a real possync serve process: with the
// box's CA (fetched from its /ca.crt, as the README says) the bundle is
// accepted; without it the client refuses the box's certificate and says
// what to pass.
func TestUpdateClientHTTPS(t *testing.T) {
	updatetest.NeedRauc(t)
	c, _ := adminChild(t)
	m := httpsRE.FindStringSubmatch(c.logs.String())
	if m == nil {
		t.Fatalf("no https address in the logs:\n%s", c.logs)
	}
	box := "https://" + m[1]
	resp, err := http.Get(c.url + "/ca.crt")
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	ca := filepath.Join(t.TempDir(), "ca.crt")
	os.WriteFile(ca, caPEM, 0o644)
	good := updatetest.Bundle(t, t.TempDir(), updatetest.Good, "9.9.9", 200_000)
	env := map[string]string{"POSSYNC_ADMIN_TOKEN": testToken}

	out, errs, code := runCmd(t, env, "update", "-box", box, "-ca", ca, good)
	if code != 0 || !strings.Contains(out, "version 9.9.9") || strings.Contains(errs, "clear text") {
		t.Fatalf("https with the box's CA: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	_, errs, code = runCmd(t, env, "update", "-box", box, good)
	if code != updExitUnreachable || !strings.Contains(errs, "pass -ca with that CA") {
		t.Errorf("https without -ca: exit %d: %s", code, errs)
	}
	other := filepath.Join(t.TempDir(), "other.crt")
	os.WriteFile(other, caPEM[:len(caPEM)/2], 0o644)
	_, errs, code = runCmd(t, env, "update", "-box", box, "-ca", other, good)
	if code != 2 || !strings.Contains(errs, "holds no PEM certificate") {
		t.Errorf("-ca with half a certificate: exit %d: %s", code, errs)
	}
}

// The hint for a box whose certificate does not name the host the client
// asked for, as net/http wraps it (the unknown-CA hint is exercised
// against a real server above).
func TestUntrustedHintHostname(t *testing.T) {
	cert := &x509.Certificate{DNSNames: []string{"possync.local"}}
	err := &url.Error{Op: "Get", URL: "https://box:8443", Err: &tls.CertificateVerificationError{
		Err: x509.HostnameError{Certificate: cert, Host: "box"}}}
	if h := untrustedHint(err); !strings.Contains(h, "does not name this host") {
		t.Errorf("untrustedHint(hostname error) = %q", h)
	}
	if h := untrustedHint(errors.New("connection refused")); h != "" {
		t.Errorf("untrustedHint(connection refused) = %q, want none", h)
	}
}

// updateTLS refuses what cannot work before anything is sent, and warns
// when the token would cross a network in clear text.
func TestUpdateTLSSettings(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.crt")
	os.WriteFile(ca, []byte("not a certificate"), 0o644)
	for _, tc := range []struct {
		box, ca, err, warn string
	}{
		{box: "http://127.0.0.1:8079"},
		{box: "http://localhost:8079"},
		{box: "http://[::1]:8079"},
		{box: "http://possync.local:8079", warn: "clear text; -box https://possync.local:8443 -ca ca.crt"},
		{box: "http://192.168.1.20:8079", warn: "clear text"},
		{box: "https://possync.local:8443"},
		{box: "http://possync.local:8079", ca: ca, err: "-ca goes with an https:// box"},
		{box: "https://possync.local:8443", ca: ca, err: "holds no PEM certificate"},
		{box: "https://possync.local:8443", ca: ca + ".missing", err: "no such file"},
		{box: "possync.local:8079", err: "not an http:// or https:// URL"},
		{box: "ftp://possync.local", err: "not an http:// or https:// URL"},
	} {
		var w strings.Builder
		_, err := updateTLS(tc.box, tc.ca, &w)
		if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("updateTLS(%q, %q) error = %v, want %q", tc.box, tc.ca, err, tc.err)
		}
		if got := w.String(); (tc.warn == "") != (got == "") || !strings.Contains(got, tc.warn) {
			t.Errorf("updateTLS(%q, %q) warned %q, want %q", tc.box, tc.ca, got, tc.warn)
		}
	}
}
