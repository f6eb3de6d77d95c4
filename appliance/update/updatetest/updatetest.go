// Package updatetest makes RAUC bundles for tests with the real rauc and
// the development keys in build/update/dev-keys (DEVELOPMENT ONLY), and a
// stand-in for the parts of rauc that need a real A/B box (install,
// status, mark-good/bad): those run in the QEMU update test.
package updatetest

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Keys returns build/update/dev-keys of this repository.
func Keys() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "build", "update", "dev-keys")
}

// Keyring is the development CA, the keyring bundles are checked against.
func Keyring() string { return filepath.Join(Keys(), "development-ca.cert.pem") }

// NeedRauc skips the test when rauc, mksquashfs or openssl is missing,
// and fails it instead under CI=true (CI installs them from
// build/deps/update.txt).
func NeedRauc(tb testing.TB) {
	tb.Helper()
	for _, tool := range []string{"rauc", "mksquashfs", "openssl"} {
		if _, err := exec.LookPath(tool); err != nil {
			msg := fmt.Sprintf("%s is missing: apt-get install rauc squashfs-tools openssl (build/deps/update.txt)", tool)
			if os.Getenv("CI") == "true" {
				tb.Fatal(msg)
			}
			tb.Skip("SKIPPED, NOT RUN: " + msg)
		}
	}
}

// Bundle kinds.
const (
	Good          = "good"         // signed by the development key, compatible possync-arm64
	WrongCompat   = "wrong-compat" // signed correctly, compatible possync-armhf
	OtherCA       = "other-ca"     // signed by a key of another CA
	Unsigned      = "unsigned"     // a bare squashfs
	Truncated     = "truncated"    // a good bundle without its last 4 KiB
	TamperedMfest = "tampered"     // the signed manifest edited after signing
)

// Bundle makes a bundle of the given kind and version in dir with about
// payload bytes of random data, and returns its path.
func Bundle(tb testing.TB, dir, kind, version string, payload int) string {
	tb.Helper()
	NeedRauc(tb)
	work, err := os.MkdirTemp(dir, "bundle-*")
	if err != nil {
		tb.Fatal(err)
	}
	defer os.RemoveAll(work)
	run := func(name string, args ...string) {
		tb.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			tb.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
	}
	root, slot, content := filepath.Join(work, "root"), filepath.Join(work, "slot"), filepath.Join(work, "content")
	for _, d := range []string{filepath.Join(root, "etc"), filepath.Join(slot, "boot"), content} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	write(tb, filepath.Join(root, "etc", "possync-release"), "POSSYNC_VERSION="+version+"\n")
	f, err := os.Create(filepath.Join(root, "etc", "filler"))
	if err != nil {
		tb.Fatal(err)
	}
	ur, err := os.Open("/dev/urandom")
	if err != nil {
		tb.Fatal(err)
	}
	buf := make([]byte, max(payload, 8192))
	if _, err := io.ReadFull(ur, buf); err != nil {
		tb.Fatal(err)
	}
	ur.Close()
	if _, err := f.Write(buf); err != nil {
		tb.Fatal(err)
	}
	f.Close()
	run("mksquashfs", root, filepath.Join(slot, "root.squashfs"), "-noappend", "-quiet", "-no-progress")
	write(tb, filepath.Join(slot, "boot", "vmlinuz"), "not a kernel\n")
	run("tar", "-C", slot, "-cf", filepath.Join(content, "root.tar"), ".")
	compat := "possync-arm64"
	if kind == WrongCompat {
		compat = "possync-armhf"
	}
	write(tb, filepath.Join(content, "manifest.raucm"), fmt.Sprintf("[update]\ncompatible=%s\nversion=%s\n\n[bundle]\nformat=verity\n\n[image.rootfs]\nfilename=root.tar\n", compat, version))
	out := filepath.Join(dir, fmt.Sprintf("possync-%s-%s.raucb", version, kind))
	cert, key := filepath.Join(Keys(), "development-signing.cert.pem"), filepath.Join(Keys(), "development-signing.key.pem")
	switch kind {
	case Unsigned:
		run("mksquashfs", content, out, "-noappend", "-quiet", "-no-progress")
		return out
	case OtherCA:
		cert, key = otherCA(tb, work, run)
	}
	run("rauc", "bundle", "--cert="+cert, "--key="+key, content, out)
	switch kind {
	case Truncated:
		data, err := os.ReadFile(out)
		if err != nil {
			tb.Fatal(err)
		}
		write(tb, out, string(data[:len(data)-4096]))
	case TamperedMfest:
		data, err := os.ReadFile(out)
		if err != nil {
			tb.Fatal(err)
		}
		i := strings.LastIndex(string(data), "compatible=possync-arm64")
		if i < 0 {
			tb.Fatal("no signed manifest in the bundle")
		}
		data[i+len("compatible=possync-arm6")] = '5'
		write(tb, out, string(data))
	}
	return out
}

// otherCA makes a CA and a signing key pair with the development subject
// names, not trusted by the development keyring.
func otherCA(tb testing.TB, work string, run func(string, ...string)) (cert, key string) {
	cnf := filepath.Join(Keys(), "openssl.cnf")
	ca, cakey := filepath.Join(work, "other-ca.pem"), filepath.Join(work, "other-ca.key")
	key, cert, csr := filepath.Join(work, "other.key"), filepath.Join(work, "other.pem"), filepath.Join(work, "other.csr")
	run("openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", cakey)
	run("openssl", "req", "-x509", "-new", "-key", cakey, "-config", cnf, "-extensions", "v3_ca", "-days", "30", "-out", ca)
	run("openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key)
	run("openssl", "req", "-new", "-key", key, "-out", csr, "-subj", "/O=possync DEVELOPMENT ONLY - never ship/CN=possync DEVELOPMENT bundle signing - never ship")
	run("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", cakey, "-days", "30", "-extfile", cnf, "-extensions", "v3_leaf", "-out", cert)
	return cert, key
}

func write(tb testing.TB, path, s string) {
	tb.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		tb.Fatal(err)
	}
}
