package main

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// children returns the pids whose parent is ppid (/proc/<pid>/stat).
func children(ppid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f := statFields(pid); len(f) > 1 && f[1] == strconv.Itoa(ppid) {
			out = append(out, pid)
		}
	}
	return out
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	f := statFields(pid)
	return len(f) > 0 && f[0] != "Z"
}

// startBench builds the bench and possync, starts a 2-minute -spawn run
// of 3 terminals (stderr to the given writer, if any) and returns it with
// the pids of the servers it spawned, once there is one.
func startBench(t *testing.T, stderr io.Writer) (*exec.Cmd, []int) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds possync and the bench")
	}
	dir := t.TempDir()
	bench, server := filepath.Join(dir, "possync-bench"), filepath.Join(dir, "possync")
	for bin, pkg := range map[string]string{bench: ".", server: "../possync"} {
		if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	cmd := exec.Command(bench, "-spawn", "-server-bin", server, "-pos", "3", "-rate", "5", "-duration", "2m", "-progress", "0")
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	var kids []int
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end) && len(kids) == 0; time.Sleep(50 * time.Millisecond) {
		kids = children(cmd.Process.Pid)
	}
	if len(kids) == 0 {
		t.Fatal("the bench started no server within 30 s")
	}
	time.Sleep(time.Second) // serving and being written to
	return cmd, kids
}

// A bench killed with SIGKILL (no chance to clean up) takes the possync it
// spawned along: the child gets SIGTERM from the kernel (Pdeathsig), so no
// stray server keeps its port and data directory.
func TestKilledBenchTakesSpawnedServer(t *testing.T) {
	cmd, kids := startBench(t, nil)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		left := 0
		for _, pid := range kids {
			if alive(pid) {
				left++
			}
		}
		if left == 0 {
			t.Logf("spawned server(s) %v gone after the bench was killed", kids)
			return
		}
	}
	for _, pid := range kids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	t.Fatalf("spawned server(s) %v still running 10 s after the bench was killed with SIGKILL", kids)
}

// A bench interrupted (SIGINT, as by Ctrl-C) in the middle of a run stops
// at once, says it was interrupted, exits 1 and stops the server it
// spawned.
func TestInterruptedBenchSaysSo(t *testing.T) {
	var stderr strings.Builder
	cmd, kids := startBench(t, &stderr)
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Errorf("interrupted bench: %v, want exit status 1", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("the bench still runs 20 s after SIGINT\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "interrupted") {
		t.Errorf("stderr does not say the run was interrupted:\n%s", stderr.String())
	}
	for _, pid := range kids {
		if alive(pid) {
			t.Errorf("spawned server %d still running after the bench stopped", pid)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
