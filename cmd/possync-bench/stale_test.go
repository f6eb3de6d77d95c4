package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The directories of a killed bench go at the next start; those of a
// running bench, and directories without an owner file, stay.
func TestRemoveStaleDirs(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	mk := func(name, owner string) string {
		dir := filepath.Join(tmp, name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if owner != "" {
			if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(owner), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	gone := mk("possync-bench-1", strconv.Itoa(dead.Process.Pid)+" 12345")
	reused := mk("possync-bench-nchan-2", strconv.Itoa(os.Getpid())+" 1") // our pid, another start time
	live := mk("possync-bench-3", "")
	if err := claimDir(live); err != nil {
		t.Fatal(err)
	}
	foreign := mk("possync-bench-4", "")
	other := mk("unrelated", strconv.Itoa(dead.Process.Pid)+" 12345")

	var log strings.Builder
	removeStaleDirs(&log)
	for dir, want := range map[string]bool{gone: false, reused: false, live: true, foreign: true, other: true} {
		if _, err := os.Stat(dir); (err == nil) != want {
			t.Errorf("%s exists = %v, want %v", filepath.Base(dir), err == nil, want)
		}
	}
	if !strings.Contains(log.String(), "possync-bench-1") {
		t.Errorf("log = %q, want it to name the removed directory", log.String())
	}
}
