package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// A bench killed with SIGKILL takes its possync and nginx along
// (Pdeathsig) but cannot remove their temporary directories (with -spawn
// the built binary alone is about 27 MiB). Each directory therefore holds
// an owner file that its bench keeps locked with flock(2) while it runs;
// the kernel drops the lock when the process ends, however it ends, and
// the next bench removes the directories whose lock it can take.
//
// A lock, not "pid and start time" from /proc/PID/stat: under qemu-user
// (the arm64 test step) a process reading its own stat gets the start time
// of the calling thread, which differs from one Go thread to the next.

// ownerFile is the file its bench holds an exclusive flock on; it
// contains the bench's pid, for a person looking.
const ownerFile = "possync-bench.owner"

// claimed keeps the owner files open, and so locked, until the process
// ends: an *os.File that is no longer referenced is closed by its
// finalizer, which would release the lock.
var claimed struct {
	sync.Mutex
	files []*os.File
}

// claimDir makes this process the owner of dir until it exits. The owner
// file is locked under another name and then renamed (the lock stays with
// the open file): created under its own name, it would be there unlocked
// for a moment, and another bench sweeping just then would take the lock
// and remove the directory of this live one.
func claimDir(dir string) error {
	path := filepath.Join(dir, ownerFile)
	f, err := os.OpenFile(path+".new", os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("mark %s as this bench's: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return fmt.Errorf("mark %s as this bench's: lock %s: %w", dir, f.Name(), err)
	}
	fmt.Fprintf(f, "%d\n", os.Getpid())
	if err := os.Rename(f.Name(), path); err != nil {
		f.Close()
		return fmt.Errorf("mark %s as this bench's: %w", dir, err)
	}
	claimed.Lock()
	claimed.files = append(claimed.files, f)
	claimed.Unlock()
	return nil
}

// removeStaleDirs removes the temporary directories of benches that are
// no longer running, saying so on log. A directory without an owner file
// (not made by a bench, or by an older one) is left alone, as is one whose
// owner file is locked (its bench still runs).
func removeStaleDirs(log io.Writer) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "possync-bench-*"))
	for _, dir := range dirs {
		if ownerGone(dir) {
			if err := os.RemoveAll(dir); err == nil {
				fmt.Fprintf(log, "removed %s, left by a bench that was killed\n", dir)
			}
		}
	}
}

// ownerGone reports whether dir has an owner file that nobody holds locked.
func ownerGone(dir string) bool {
	f, err := os.Open(filepath.Join(dir, ownerFile))
	if err != nil {
		return false
	}
	defer f.Close()
	// EWOULDBLOCK: its bench still runs. Closing f releases our lock.
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil
}
