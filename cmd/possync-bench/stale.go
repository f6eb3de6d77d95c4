package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// A bench killed with SIGKILL takes its possync and nginx along
// (Pdeathsig) but cannot remove their temporary directories (with -spawn
// the built binary alone is about 27 MiB). Each directory therefore names
// its owner, and the next bench removes those whose owner is gone.

// ownerFile holds "pid starttime" of the bench that made the directory.
const ownerFile = "possync-bench.owner"

// procStart returns pid's start time (/proc/PID/stat field 22), which
// tells a live owner from a later process that reuses its pid.
func procStart(pid int) string {
	f := statFields(pid)
	if len(f) < 20 {
		return ""
	}
	return f[19]
}

// claimDir records this process as the owner of dir.
func claimDir(dir string) error {
	id := fmt.Sprintf("%d %s\n", os.Getpid(), procStart(os.Getpid()))
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(id), 0o644); err != nil {
		return fmt.Errorf("mark %s as this bench's: %w", dir, err)
	}
	return nil
}

// removeStaleDirs removes the temporary directories of benches that are
// no longer running, saying so on log. A directory without an owner file
// (not made by a bench, or by an older one) is left alone.
func removeStaleDirs(log io.Writer) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "possync-bench-*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) != 2 {
			continue
		}
		pid, err := strconv.Atoi(f[0])
		if err != nil || (pid > 0 && procStart(pid) == f[1]) {
			continue // its bench still runs
		}
		if err := os.RemoveAll(dir); err == nil {
			fmt.Fprintf(log, "removed %s, left by a bench that was killed\n", dir)
		}
	}
}
