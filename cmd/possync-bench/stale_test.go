package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// claimHelperEnv makes the test binary, started by TestRemoveStaleDirs,
// claim the directory it names, say so, and wait to be killed.
const claimHelperEnv = "POSSYNC_BENCH_CLAIM_DIR"

func TestClaimHelper(t *testing.T) {
	dir := os.Getenv(claimHelperEnv)
	if dir == "" {
		t.Skip("helper process for TestRemoveStaleDirs")
	}
	if err := claimDir(dir); err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("claimed\n")
	time.Sleep(time.Minute) // killed long before; a bare select{} would be a "deadlock" to the runtime
}

// The directories of a killed bench go at the next start; those of a
// running bench (this one, or another process), and directories without
// an owner file, stay.
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
	unlocked := mk("possync-bench-1", "12345\n") // its bench ended without removing it
	ours := mk("possync-bench-3", "")
	if err := claimDir(ours); err != nil {
		t.Fatal(err)
	}
	foreign := mk("possync-bench-4", "")
	other := mk("unrelated", "12345\n")

	// Another bench, alive while the first sweep runs, killed before the second.
	killed := mk("possync-bench-nchan-2", "")
	helper := exec.Command(os.Args[0], "-test.run=^TestClaimHelper$")
	helper.Env = append(os.Environ(), claimHelperEnv+"="+killed)
	helper.Stderr = os.Stderr
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	defer helper.Process.Kill()
	if line, err := bufio.NewReader(out).ReadString('\n'); line != "claimed\n" {
		t.Fatalf("helper said %q (%v), want it to claim %s", line, err, killed)
	}

	check := func(sweep string, want map[string]bool) string {
		t.Helper()
		var log strings.Builder
		removeStaleDirs(&log)
		for dir, want := range want {
			if _, err := os.Stat(dir); (err == nil) != want {
				t.Errorf("%s sweep: %s exists = %v, want %v", sweep, filepath.Base(dir), err == nil, want)
			}
		}
		return log.String()
	}
	log := check("first", map[string]bool{unlocked: false, ours: true, foreign: true, other: true, killed: true})
	if !strings.Contains(log, "possync-bench-1") {
		t.Errorf("log = %q, want it to name the removed directory", log)
	}
	if err := helper.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	helper.Wait()
	check("second", map[string]bool{ours: true, killed: false})
}
