package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestCertSaysWhenItMakesACA: `possync cert` pointed at a data directory
// without a CA (a forgotten -config on the box, or a -data other than the
// running server's) makes one, and says so, naming the directory: its
// fingerprint would not match the CA the tills see on /ca.crt. With the
// CA already there it says nothing of the kind.
func TestCertSaysWhenItMakesACA(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	out := filepath.Join(t.TempDir(), "ca.crt")
	_, stderr, code := runCLI(t, "cert", "-data", dir, "-out", out)
	if code != 0 {
		t.Fatalf("possync cert = %d: %s", code, stderr)
	}
	for _, w := range []string{"made a new local CA", filepath.Join(dir, "tls"), "-config"} {
		if !strings.Contains(stderr, w) {
			t.Errorf("cert into an empty data directory said %q on stderr, want it to mention %q", stderr, w)
		}
	}
	_, stderr, code = runCLI(t, "cert", "-data", dir, "-out", out)
	if code != 0 || strings.Contains(stderr, "made a new") {
		t.Errorf("cert with the CA present = %d, stderr %q; want 0 and no notice", code, stderr)
	}
}
