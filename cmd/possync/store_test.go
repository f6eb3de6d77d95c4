package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runPossync runs the test binary as possync with args in a child process
// and returns its stdout, stderr and exit code.
func runPossync(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^TestHelperProcess$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), "POSSYNC_HELPER_PROCESS=1", "LOG_LEVEL=info")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run possync %v: %v", args, err)
	}
	return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
}

// Issue 10, a store that cannot be opened: serve exits 3 with a log line
// naming the file and the problem (and deletes nothing); check-store says
// the same, read-only, also exit 3; recover moves the store aside into
// damaged-<time> and serve then starts empty, and the tills' sync_all
// refill it; the damaged files are all still there.
func TestDamagedStoreCheckRecover(t *testing.T) {
	dir := t.TempDir()
	c := startChild(t, dir)
	mustUpdate(t, c.url, syncAll(1))
	mustUpdate(t, c.url, order("x", 1, 1, "n"))
	c.stop(t)

	out, _, code := runPossync(t, "check-store", "-data", dir)
	if code != 0 || !strings.Contains(out, "OK: 1 multi-sessions, 1 POS, 1 orders") {
		t.Fatalf("check-store of a healthy store: exit %d, %q", code, out)
	}

	// Damage: the MANIFEST truncated (a card that lost its last writes).
	if err := os.Truncate(filepath.Join(dir, "MANIFEST"), 3); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := runPossync(t, "serve", "-listen", "127.0.0.1:0", "-data", dir, "-mdns=false")
	if code != exitStore || !strings.Contains(stderr, "store cannot be opened") || !strings.Contains(stderr, "MANIFEST") ||
		!strings.Contains(stderr, "(damaged)") {
		t.Fatalf("serve on a damaged store: exit %d, stderr:\n%s\nwant exit 3 and a line naming MANIFEST and the problem", code, stderr)
	}
	t.Logf("serve on a damaged store, exit %d:\n%s", code, stderr)
	out, stderr, code = runPossync(t, "check-store", "-data", dir)
	if code != exitStore || !strings.Contains(stderr, "MANIFEST") {
		t.Fatalf("check-store of a damaged store: exit %d, %q %q", code, out, stderr)
	}
	before, _ := os.ReadDir(dir)

	out, stderr, code = runPossync(t, "recover", "-data", dir)
	if code != 0 || !strings.Contains(out, "damaged-") {
		t.Fatalf("recover: exit %d, %q %q", code, out, stderr)
	}
	t.Logf("recover: %s", out)
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || !strings.HasPrefix(entries[0].Name(), "damaged-") {
		t.Fatalf("data dir after recover holds %v, want only damaged-<time>", entries)
	}
	kept, _ := os.ReadDir(filepath.Join(dir, entries[0].Name()))
	if len(kept) != len(before) {
		t.Errorf("recover kept %d files, the damaged store had %d", len(kept), len(before))
	}
	if _, _, code := runPossync(t, "recover", "-data", dir); code == 0 {
		t.Errorf("recover of an empty directory that opens: exit 0, want a refusal")
	}

	c = startChild(t, dir)
	res := mustUpdate(t, c.url, syncAll(1))
	if data, _ := res["data"].(map[string]any); data == nil || len(data["orders"].([]any)) != 0 {
		t.Errorf("sync_all after recover = %v, want an empty store", res)
	}
	mustUpdate(t, c.url, order("x", 1, 1, "n2")) // a till's resync writes its open order back
	c.stop(t)
	if out, _, code := runPossync(t, "check-store", "-data", dir); code != 0 || !strings.Contains(out, "1 orders") {
		t.Errorf("check-store after the refill: exit %d, %q", code, out)
	}
}

// stop ends the child with SIGTERM and waits for a clean exit.
func (c *child) stop(t testing.TB) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-c.done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, c.logs)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("possync did not stop within 30s of SIGTERM")
	}
}

// After kill -9 (a power cut) the store is healthy: check-store says OK
// and recover refuses to move it aside, although Badger's read-only mode
// refuses the newest memtable ("Log truncate required") — review finding:
// following the docs after a power cut emptied the shop.
func TestCheckStoreAfterKill9(t *testing.T) {
	dir := t.TempDir()
	c := startChild(t, dir)
	for i := 1; i <= 20; i++ {
		mustUpdate(t, c.url, order(fmt.Sprintf("00001-001-%04d", i), i, 1, fmt.Sprintf("n%d", i)))
	}
	c.kill9(t)
	if out, stderr, code := runPossync(t, "check-store", "-data", dir); code != 0 || !strings.Contains(out, "20 orders") {
		t.Fatalf("check-store after kill -9: exit %d, %q %q; want exit 0 and 20 orders", code, out, stderr)
	}
	if out, stderr, code := runPossync(t, "recover", "-data", dir); code == 0 {
		t.Fatalf("recover of a store that opens after kill -9: exit 0, %q %q; want a refusal", out, stderr)
	}
	c = startChild(t, dir)
	res := mustUpdate(t, c.url, syncAll(1))
	if data, _ := res["data"].(map[string]any); data == nil || len(data["orders"].([]any)) != 20 {
		t.Errorf("sync_all after kill -9 and check-store = %v, want 20 orders", res)
	}
	c.stop(t)
}

// A -data that holds someone's files but no store (a mistyped path) is
// refused by serve and check-store alike (exit 3, "not a store", naming a
// file), nothing is created in it, and recover never moves the files.
func TestNotAStoreRefused(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a store"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"serve", "-listen", "127.0.0.1:0", "-data", dir, "-mdns=false"},
		{"check-store", "-data", dir},
		{"recover", "-data", dir, "-force"},
	} {
		_, stderr, code := runPossync(t, args...)
		if code != exitStore || !strings.Contains(stderr, "(not a store)") || !strings.Contains(stderr, "notes.txt") {
			t.Errorf("%s: exit %d, %q; want exit 3 naming notes.txt as not a store", args[0], code, stderr)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 || entries[0].Name() != "notes.txt" {
		t.Errorf("after the refusals the directory holds %v, want only notes.txt", entries)
	}
	file := filepath.Join(dir, "notes.txt")
	if _, stderr, code := runPossync(t, "serve", "-listen", "127.0.0.1:0", "-data", file, "-mdns=false"); code != exitStore ||
		!strings.Contains(stderr, "(not a store)") || !strings.Contains(stderr, "a file, not a directory") {
		t.Errorf("serve -data FILE: exit %d, %q; want exit 3, not a store: a file", code, stderr)
	}
}
