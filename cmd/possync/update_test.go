package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"possync/appliance/config"
	upd "possync/appliance/update"
	"possync/appliance/update/updatetest"
)

const testToken = "0123456789abcdef-test-token"

// adminChild runs `possync serve` in a child process with the admin
// endpoint on, update.dir in a temp dir and the development keyring.
func adminChild(t *testing.T) (*child, string) {
	t.Helper()
	updDir := t.TempDir()
	// The host has no rauc.slot= on its command line: slots.json, which
	// boot-check writes on a box, makes it one with A/B slots.
	if err := upd.WriteSlots(updDir, upd.RaucStatus{Booted: "A", Slots: []upd.Slot{{Name: "rootfs.0", Bootname: "A"}, {Name: "rootfs.1", Bootname: "B"}}}, "1.0.0"); err != nil {
		t.Fatal(err)
	}
	c := startChildWith(t, childOptions{dir: t.TempDir(), config: fmt.Sprintf("[admin]\ntoken = %q\n[update]\ndir = %q\nkeyring = %q\n",
		testToken, updDir, updatetest.Keyring())})
	return c, updDir
}

// runCmd runs possync's run with args and returns stdout, stderr and the
// exit code main would use.
func runCmd(t *testing.T, env map[string]string, args ...string) (string, string, int) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	var out, errb bytes.Buffer
	err := run(context.Background(), args, &out, &errb)
	code := 0
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		code = ee.code
		if ee.err != nil {
			errb.WriteString(ee.err.Error())
		}
	case err != nil:
		code = 1
		errb.WriteString(err.Error())
	}
	return out.String(), errb.String(), code
}

// possync update against a real possync serve process: accepted bundle,
// wrong token, bad bundle, a box without the endpoint, no box, no token.
func TestUpdateClient(t *testing.T) {
	updatetest.NeedRauc(t)
	c, updDir := adminChild(t)
	bundles := t.TempDir()
	good := updatetest.Bundle(t, bundles, updatetest.Good, "9.9.9", 3_000_000)
	tokFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokFile, []byte(testToken+"\n"), 0o600)

	out, errs, code := runCmd(t, nil, "update", "-box", c.url, "-token-file", tokFile, good)
	if code != 0 || !strings.Contains(out, "version 9.9.9") || !strings.Contains(out, "next: ") || !strings.Contains(errs, "uploading possync-9.9.9-good.raucb: 100%") {
		t.Fatalf("good bundle: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(updDir, "incoming", "possync-9.9.9.raucb")); err != nil {
		t.Fatalf("bundle not in incoming: %v", err)
	}

	// The same token file as the box's, copied from its FAT partition
	// after Notepad saved it (byte order mark, CRLF).
	os.WriteFile(tokFile, []byte("\ufeff"+testToken+"\r\n"), 0o600)
	if out, errs, code := runCmd(t, nil, "update", "-box", c.url, "-token-file", tokFile, good); code != 0 {
		t.Fatalf("token file with BOM and CRLF: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}

	_, errs, code = runCmd(t, map[string]string{"POSSYNC_ADMIN_TOKEN": "wrong-token-0123456789"}, "update", "-box", c.url, good)
	if code != updExitToken || !strings.Contains(errs, "refused the token") {
		t.Errorf("wrong token: exit %d: %s", code, errs)
	}
	unsigned := updatetest.Bundle(t, bundles, updatetest.Unsigned, "9.9.9", 100_000)
	_, errs, code = runCmd(t, map[string]string{"POSSYNC_ADMIN_TOKEN": testToken}, "update", "-box", c.url, unsigned)
	if code != updExitRefusedBundle || !strings.Contains(errs, "Signature size is 0") {
		t.Errorf("unsigned: exit %d: %s", code, errs)
	}
	plain := startChild(t, t.TempDir())
	_, errs, code = runCmd(t, nil, "update", "-box", plain.url, good)
	if code != updExitNoEndpoint || !strings.Contains(errs, "admin endpoint is off") {
		t.Errorf("box without a token: exit %d: %s", code, errs)
	}
	far := startChildWith(t, childOptions{dir: t.TempDir(), config: fmt.Sprintf("[admin]\ntoken = %q\n[security]\nallowed_networks = [\"10.0.0.0/8\"]\n", testToken)})
	_, errs, code = runCmd(t, nil, "update", "-box", far.url, good)
	if code != updExitNetwork || !strings.Contains(errs, "not in security.allowed_networks") {
		t.Errorf("address not allowed: exit %d: %s", code, errs)
	}
	_, errs, code = runCmd(t, nil, "update", "-box", "http://127.0.0.1:1", good)
	if code != updExitUnreachable || !strings.Contains(errs, "cannot reach") {
		t.Errorf("no box: exit %d: %s", code, errs)
	}
	t.Setenv("POSSYNC_ADMIN_TOKEN", "")
	_, errs, code = runCmd(t, nil, "update", "-box", c.url, good)
	if code != 2 || !strings.Contains(errs, "no admin token") {
		t.Errorf("no token: exit %d: %s", code, errs)
	}
}

// The root-side commands end to end on this machine, with the stand-in
// for rauc's install/status/mark (updatetest.FakeRauc; the real ones run
// in the QEMU update test) and the real rauc info: install-pending from a
// "FAT partition", reboot command run, file renamed; boot-check against a
// real possync serve's /healthz?write=1 marks the slot good.
func TestRootCommands(t *testing.T) {
	fake := updatetest.NewFakeRauc(t, "A", "")
	c, updDir := adminChild(t)
	fat := t.TempDir()
	b := updatetest.Bundle(t, fat, updatetest.Good, "9.9.9", 100_000)
	rebooted := filepath.Join(t.TempDir(), "rebooted")
	flags := []string{"-dir", updDir, "-rauc", fake.Path, "-keyring", updatetest.Keyring(), "-reboot", "touch " + rebooted}

	out, errs, code := runCmd(t, nil, append(append([]string{"install-pending"}, flags...), "-fat", fat)...)
	if code != 0 || !strings.Contains(out, "installed 9.9.9 into slot B") {
		t.Fatalf("install-pending: exit %d\n%s\n%s", code, out, errs)
	}
	if _, err := os.Stat(rebooted); err != nil {
		t.Fatal("reboot command not run")
	}
	if _, err := os.Stat(b + ".installed"); err != nil {
		t.Fatalf("bundle not renamed: %v", err)
	}

	// The box "reboots" into B, running this binary as 9.9.9's stand-in.
	fake.SetStatus(t, "B", "")
	os.Remove(rebooted)
	out, errs, code = runCmd(t, nil, append(append([]string{"boot-check"}, flags...), "-health-url", c.url+"/healthz?write=1", "-within", "20s")...)
	if code != 0 || !strings.Contains(out, "marked good") {
		t.Fatalf("boot-check: exit %d\n%s\n%s", code, out, errs)
	}
	as, _ := upd.ReadAttempts(updDir)
	if a := as[len(as)-1]; a.Result != upd.ResultGood || a.Slot != "B" {
		t.Fatalf("last attempt %+v", a)
	}

	// A bad bundle given to install-bundle: exit 3, renamed, no reboot.
	bad := updatetest.Bundle(t, fat, updatetest.OtherCA, "9.9.10", 100_000)
	_, errs, code = runCmd(t, nil, append(append([]string{"install-bundle"}, flags...), bad)...)
	if code != rootExitRefused || !strings.Contains(errs, "signature verification failed") {
		t.Fatalf("install-bundle bad: exit %d: %s", code, errs)
	}
	if _, err := os.Stat(rebooted); err == nil {
		t.Fatal("rebooted after a refused bundle")
	}

	// An ordinary boot (slot B already good, nothing pending) whose possync
	// is not healthy: exit 1, but neither marked bad nor rebooted — a reboot
	// would not cure it and would run the slot's U-Boot counter down
	// (docs/update.md "Marking good", 7).
	out, errs, code = runCmd(t, nil, append(append([]string{"boot-check"}, flags...), "-health-url", "http://127.0.0.1:1/healthz?write=1", "-within", "2s")...)
	if code != 1 || strings.Contains(out, "marked bad") || !strings.Contains(errs, "not marked good (not a trial boot: no reboot)") {
		t.Fatalf("boot-check, ordinary boot, unhealthy: exit %d\n%s\n%s", code, out, errs)
	}
	if _, err := os.Stat(rebooted); err == nil {
		t.Fatal("boot-check rebooted an ordinary boot that was not healthy")
	}
	for _, call := range fake.Calls() {
		if strings.Contains(call, "mark-bad") {
			t.Fatalf("ordinary boot marked bad: %v", fake.Calls())
		}
	}
}

// check-config reads admin.token_file and refuses a short token.
func TestCheckConfigAdminToken(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "admin.token")
	os.WriteFile(tok, []byte("tooshort\n"), 0o600)
	cfg := filepath.Join(dir, "possync.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("[admin]\ntoken_file = %q\n", tok)), 0o600)
	_, errs, code := runCmd(t, nil, "check-config", "-config", cfg)
	if code != 1 || !strings.Contains(errs, "at least 16 bytes, has 8") {
		t.Fatalf("short token file: exit %d: %s", code, errs)
	}
	os.WriteFile(tok, []byte(testToken+"\n"), 0o600)
	if out, errs, code := runCmd(t, nil, "check-config", "-config", cfg); code != 0 {
		t.Fatalf("good token file: exit %d: %s %s", code, out, errs)
	}
	// The image names a file on the FAT partition that may not be there:
	// the endpoint is off, check-config passes and says so.
	os.Remove(tok)
	if out, errs, code := runCmd(t, nil, "check-config", "-config", cfg); code != 0 || !strings.Contains(errs, "does not exist: the admin endpoint is off") {
		t.Fatalf("missing token file: exit %d: %s %s", code, out, errs)
	}
}

func TestHealthURL(t *testing.T) {
	for listen, want := range map[string]string{
		":8079":             "http://127.0.0.1:8079/healthz?write=1",
		"0.0.0.0:8079":      "http://127.0.0.1:8079/healthz?write=1",
		"[::]:8079":         "http://127.0.0.1:8079/healthz?write=1",
		"192.168.1.50:9000": "http://192.168.1.50:9000/healthz?write=1",
		"[fd00::5]:8079":    "http://[fd00::5]:8079/healthz?write=1",
		"localhost:8079":    "http://127.0.0.1:8079/healthz?write=1",
	} {
		if got, err := healthURL(listen); err != nil || got != want {
			t.Errorf("healthURL(%q) = %q, %v; want %q", listen, got, err, want)
		}
	}
}

// A part file left by a possync killed mid-upload is deleted when possync
// starts with the admin endpoint on, not only at the next upload: it holds
// up to admin.max_bundle_mib of the partition the store needs.
func TestServeRemovesStaleParts(t *testing.T) {
	cfg := config.Default()
	cfg.Admin.Token = testToken
	cfg.Update.Dir = t.TempDir()
	in := filepath.Join(cfg.Update.Dir, "incoming")
	part := filepath.Join(in, "upload-1.raucb.part")
	if err := os.MkdirAll(in, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(part, make([]byte, 4096), 0o640); err != nil {
		t.Fatal(err)
	}
	admin, err := adminEndpoint(cfg, slog.New(slog.DiscardHandler))
	if err != nil || admin == nil {
		t.Fatalf("adminEndpoint = %v, %v", admin, err)
	}
	if _, err := os.Stat(part); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stale part file still there: %v", err)
	}
}

// A token file with two lines or a control character cannot be sent in a
// header: that is a usage error naming the file (exit 2), not "cannot
// reach the box" (exit 4, what Go's HTTP client made of it).
func TestUpdateTokenUnsendable(t *testing.T) {
	bundle := filepath.Join(t.TempDir(), "b.raucb")
	os.WriteFile(bundle, []byte("x"), 0o644)
	tokFile := filepath.Join(t.TempDir(), "token")
	for _, tok := range []string{"first-line-0123456789\nsecond-line", "0123456789\x00abcdef0123"} {
		os.WriteFile(tokFile, []byte(tok+"\n"), 0o600)
		_, errs, code := runCmd(t, nil, "update", "-box", "http://127.0.0.1:1", "-token-file", tokFile, bundle)
		if code != 2 || !strings.Contains(errs, tokFile) {
			t.Errorf("token %q: exit %d: %s", tok, code, errs)
		}
	}
}

// A box whose update.keyring is missing cannot take any bundle: the
// client learns it from the check before the upload (nothing is sent),
// and is told it is the box, not the bundle (exit 1, not 7).
func TestUpdateBoxWithoutKeyring(t *testing.T) {
	updatetest.NeedRauc(t)
	missing := filepath.Join(t.TempDir(), "keyring.pem")
	updDir := t.TempDir()
	upd.WriteSlots(updDir, upd.RaucStatus{Booted: "A", Slots: []upd.Slot{{Name: "rootfs.0", Bootname: "A"}}}, "1.0.0")
	c := startChildWith(t, childOptions{dir: t.TempDir(), config: fmt.Sprintf("[admin]\ntoken = %q\n[update]\ndir = %q\nkeyring = %q\n",
		testToken, updDir, missing)})
	good := updatetest.Bundle(t, t.TempDir(), updatetest.Good, "9.9.9", 100_000)
	_, errs, code := runCmd(t, map[string]string{"POSSYNC_ADMIN_TOKEN": testToken}, "update", "-box", c.url, good)
	if code != 1 || !strings.Contains(errs, missing) || strings.Contains(errs, "refused the bundle") || strings.Contains(errs, "uploading") {
		t.Fatalf("exit %d: %s", code, errs)
	}
	t.Log(errs)
}

// A machine without A/B slots (no rauc.slot= on the command line, no
// slots.json: today's one-root image, a laptop) would never install an
// upload; it refuses before anything is sent, saying why (exit 1).
func TestUpdateBoxWithoutSlots(t *testing.T) {
	updatetest.NeedRauc(t)
	if upd.BootedSlot(readCmdline()) != "" {
		t.Skip("SKIPPED, NOT RUN: this machine has A/B slots")
	}
	updDir := t.TempDir()
	c := startChildWith(t, childOptions{dir: t.TempDir(), config: fmt.Sprintf("[admin]\ntoken = %q\n[update]\ndir = %q\nkeyring = %q\n",
		testToken, updDir, updatetest.Keyring())})
	good := updatetest.Bundle(t, t.TempDir(), updatetest.Good, "9.9.9", 100_000)
	_, errs, code := runCmd(t, map[string]string{"POSSYNC_ADMIN_TOKEN": testToken}, "update", "-box", c.url, good)
	if code != 1 || !strings.Contains(errs, "no A/B slots") || strings.Contains(errs, "uploading") {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if ents, _ := os.ReadDir(filepath.Join(updDir, "incoming")); len(ents) != 0 {
		t.Fatalf("incoming holds %d files", len(ents))
	}
	t.Log(errs)
}

func readCmdline() string {
	b, _ := os.ReadFile("/proc/cmdline")
	return string(b)
}
