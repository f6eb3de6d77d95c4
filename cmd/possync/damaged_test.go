package main

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// damagedBase makes a store with orders big enough to live in the value
// log (storage.ValueThreshold is 1 KiB), written by a real server and
// closed cleanly: one table file, one value-log file, a MANIFEST.
func damagedBase(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	c := startChild(t, dir)
	mustUpdate(t, c.url, syncAll(1))
	for i := range 20 {
		msg := order(fmt.Sprintf("o%d", i), i+1, 1, "n")
		msg["data"].(map[string]any)["note"] = strings.Repeat("x", 3000)
		mustUpdate(t, c.url, msg)
	}
	c.stop(t)
	return dir
}

// fileSums returns name → size and SHA-256 of every file in dir.
func fileSums(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() { // tls/, made by serve on the healthy run
			out = append(out, e.Name()+"/")
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s %d %x", e.Name(), len(b), sha256.Sum256(b)))
	}
	return out
}

func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	if out, err := exec.Command("cp", "-a", src+"/.", dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	return dst
}

// firstFile returns the first file of dir whose name ends with suffix.
func firstFile(t *testing.T, dir, suffix string) string {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), suffix) {
			return e.Name()
		}
	}
	t.Fatalf("no %s file in %s", suffix, dir)
	return ""
}

// Issue 10, a store that cannot be opened: every way of damage gives exit
// 3 (never a Go panic, exit 2, nor an empty store served) with a log line
// naming the file and the problem, and after three starts (systemd
// restarts it) every file is byte-identical, with no file added. check-store says the same, also exit 3.
func TestDamagedStoreExits3(t *testing.T) {
	base := damagedBase(t)
	sst, vlog := firstFile(t, base, ".sst"), firstFile(t, base, ".vlog")
	size := func(dir, name string) int64 {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	truncate := func(name string, keep func(size int64) int64) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			if err := os.Truncate(filepath.Join(dir, name), keep(size(dir, name))); err != nil {
				t.Fatal(err)
			}
		}
	}
	scribble := func(name string, at func(size int64) int64) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt([]byte("a card going bad writes this"), at(size(dir, name))); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		name    string
		damage  func(t *testing.T, dir string)
		file    string // named in the log line
		problem string
	}{
		{"table truncated to half", truncate(sst, func(s int64) int64 { return s / 2 }), sst, "(damaged)"},
		{"table truncated to zero", truncate(sst, func(int64) int64 { return 0 }), sst, "(damaged)"},
		{"table corrupt", scribble(sst, func(int64) int64 { return 100 }), sst, "(damaged)"},
		{"value log truncated", truncate(vlog, func(s int64) int64 { return s / 2 }), vlog, "(damaged)"},
		{"value log corrupt", scribble(vlog, func(s int64) int64 { return s / 3 }), vlog, "(damaged)"},
		{"value log missing", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, vlog)) }, vlog, "(damaged)"},
		{"MANIFEST cut after its header", truncate("MANIFEST", func(int64) int64 { return 8 }), "MANIFEST", "does not list " + sst},
		{"MANIFEST garbage", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "MANIFEST"), []byte("not a manifest"), 0o600)
		}, "MANIFEST", "(damaged)"},
		{"MANIFEST missing", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, "MANIFEST")) }, "MANIFEST", "(damaged)"},
		{"MANIFEST of a newer Badger", func(t *testing.T, dir string) {
			f, err := os.OpenFile(filepath.Join(dir, "MANIFEST"), os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var v [2]byte
			binary.BigEndian.PutUint16(v[:], 99) // the format version after the magic
			f.WriteAt(v[:], 6)
		}, "MANIFEST", "(newer format)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyDir(t, base)
			tc.damage(t, dir)
			before := fileSums(t, dir)
			var stderr string
			var code int
			for range 3 { // systemd's restart loop: every start fails the same way
				_, stderr, code = runPossync(t, "serve", "-listen", "127.0.0.1:0", "-data", dir, "-mdns=false", "-tls-listen=")
			}
			if code != exitStore || !strings.Contains(stderr, `msg="store cannot be opened"`) ||
				!strings.Contains(stderr, filepath.Join(dir, tc.file)) || !strings.Contains(stderr, tc.problem) {
				t.Fatalf("serve: exit %d, stderr:\n%s\nwant exit %d and a log line naming %s and %q", code, stderr, exitStore, tc.file, tc.problem)
			}
			if after := fileSums(t, dir); !slices.Equal(after, before) {
				t.Errorf("files changed by serve:\n%s\nbefore:\n%s", strings.Join(after, "\n"), strings.Join(before, "\n"))
			}
			if _, stderr, code := runPossync(t, "check-store", "-data", dir); code != exitStore || !strings.Contains(stderr, tc.file) {
				t.Errorf("check-store: exit %d, %s; want exit %d naming %s", code, stderr, exitStore, tc.file)
			}
			if after := fileSums(t, dir); !slices.Equal(after, before) {
				t.Errorf("files changed by check-store:\n%s", strings.Join(after, "\n"))
			}
			line, _, _ := strings.Cut(stderr[strings.Index(stderr, `msg="store cannot be opened"`):], "\n")
			t.Logf("exit %d: %s", code, line)
		})
	}
}

// A table file the possync user cannot read: exit 3 "(permission)". The
// child runs as nobody, so the test needs root.
func TestUnreadableStoreExits3(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run possync as another user")
	}
	base := damagedBase(t)
	dir := filepath.Join(t.TempDir(), "data")
	if out, err := exec.Command("cp", "-a", base, dir).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	bin := filepath.Join(t.TempDir(), "possync.test")
	if out, err := exec.Command("cp", os.Args[0], bin).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	for _, p := range []string{filepath.Dir(dir), filepath.Dir(filepath.Dir(dir)), filepath.Dir(bin), filepath.Dir(filepath.Dir(bin))} {
		os.Chmod(p, 0o755)
	}
	if out, err := exec.Command("chown", "-R", "65534:65534", dir).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v %s", err, out)
	}
	sst := firstFile(t, dir, ".sst")
	if err := os.Chown(filepath.Join(dir, sst), 0, 0); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(dir, sst), 0o600)
	before := fileSums(t, dir)
	cmd := exec.Command(bin, "-test.run=^TestHelperProcess$", "--", "serve", "-listen", "127.0.0.1:0", "-data", dir, "-mdns=false", "-tls-listen=")
	cmd.Env = append(os.Environ(), "POSSYNC_HELPER_PROCESS=1", "HOME=/", "GOCOVERDIR=")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, _ := cmd.CombinedOutput()
	code := cmd.ProcessState.ExitCode()
	if code != exitStore || !strings.Contains(string(out), "(permission)") || !strings.Contains(string(out), sst) {
		t.Fatalf("serve as nobody: exit %d:\n%s\nwant exit 3 naming %s and (permission)", code, out, sst)
	}
	if after := fileSums(t, dir); !slices.Equal(after, before) {
		t.Errorf("files changed by serve:\n%v\nbefore:\n%v", after, before)
	}
}
