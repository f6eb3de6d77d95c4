package main

import (
	"io"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// A bench that starts while another sweeps never loses its new directory:
// the owner file appears already locked, so a sweep cannot take it in the
// moment between its creation and its lock.
func TestClaimWhileSweeping(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !stop.Load() {
			removeStaleDirs(io.Discard)
		}
	}()
	deadline := time.Now().Add(500 * time.Millisecond)
	n := 0
	for ; time.Now().Before(deadline); n++ {
		dir, err := os.MkdirTemp("", "possync-bench-")
		if err != nil {
			t.Fatal(err)
		}
		if err := claimDir(dir); err != nil {
			t.Fatalf("claim %d: %v", n, err)
		}
		// Let the sweeper pass over it at least once more.
		time.Sleep(20 * time.Microsecond)
		if _, err := os.Stat(dir); err != nil {
			t.Fatalf("claim %d: a sweep removed the live bench's %s: %v", n, dir, err)
		}
		os.RemoveAll(dir) // the next claim's directory is the only one to sweep
	}
	stop.Store(true)
	<-done
	t.Logf("%d claims while sweeping", n)
}
