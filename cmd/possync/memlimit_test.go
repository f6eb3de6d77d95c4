package main

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// possync serve sets the Go runtime's soft memory limit (GOMEMLIMIT), as
// the runtime itself reports it in go_memlimit_bytes: half of what the
// process may use by default, never less than bus.max_retained_mib +
// 128 MiB, and as the environment says when GOMEMLIMIT or AUTOMEMLIMIT is
// set. A bad AUTOMEMLIMIT is logged and the default ratio applies; a GOMEMLIMIT
// below the floor is taken but logged as a warning.
func TestSoftMemoryLimit(t *testing.T) {
	// The children get only what a case sets (t.Setenv restores the
	// test's own environment afterwards).
	for _, v := range []string{"GOMEMLIMIT", "AUTOMEMLIMIT"} {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	allowed, _, err := memoryAllowed() // a child is in the test's cgroup; TestSoftMemoryLimitFromCgroup checks the reading
	if err != nil {
		t.Fatal(err)
	}
	half := int64(allowed / 2)
	for _, tc := range []struct {
		name, config, log string
		env               []string
		want              int64
	}{
		{name: "default", want: max(half, (64+128)<<20), log: `msg="soft memory limit" limit_mib=`},
		{name: "GOMEMLIMIT", env: []string{"GOMEMLIMIT=300MiB"}, want: 300 << 20, log: "GOMEMLIMIT=300MiB limit_mib=300"},
		{name: "GOMEMLIMIT below the floor", env: []string{"GOMEMLIMIT=1"}, want: 1, log: "level=WARN msg=\"soft memory limit from GOMEMLIMIT is below"},
		{name: "GOMEMLIMIT off", env: []string{"GOMEMLIMIT=off"}, want: math.MaxInt64, log: `no soft memory limit: GOMEMLIMIT`},
		{name: "AUTOMEMLIMIT ratio", env: []string{"AUTOMEMLIMIT=0.25"}, want: max(half/2, (64+128)<<20), log: `msg="soft memory limit"`},
		{name: "AUTOMEMLIMIT off", env: []string{"AUTOMEMLIMIT=off"}, want: math.MaxInt64, log: "AUTOMEMLIMIT=off"},
		{name: "AUTOMEMLIMIT empty", env: []string{"AUTOMEMLIMIT="}, want: max(half, (64+128)<<20), log: `msg="soft memory limit" limit_mib=`},
		// A bad override is a warning, and the default ratio still applies.
		{name: "AUTOMEMLIMIT bad", env: []string{"AUTOMEMLIMIT=half"}, want: max(half, (64+128)<<20), log: `AUTOMEMLIMIT=half ratio=0.5`},
		{name: "AUTOMEMLIMIT 0", env: []string{"AUTOMEMLIMIT=0"}, want: max(half, (64+128)<<20), log: `AUTOMEMLIMIT=0 ratio=0.5`},
		{name: "AUTOMEMLIMIT 2", env: []string{"AUTOMEMLIMIT=2"}, want: max(half, (64+128)<<20), log: `AUTOMEMLIMIT=2 ratio=0.5`},
		{name: "retention above the share", config: "[bus]\nmax_retained_mib = 1024\n", env: []string{"AUTOMEMLIMIT=0.001"},
			want: (1024 + 128) << 20, log: "soft memory limit raised to bus.max_retained_mib + 128 MiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := startChildWith(t, childOptions{dir: t.TempDir(), config: tc.config, env: tc.env})
			// Exact in a float64: below 2^53, or 2^63-1 rounded to 2^63 on both sides.
			if got := scrape(t, c.url, "go_memlimit_bytes"); got != float64(tc.want) {
				t.Errorf("go_memlimit_bytes = %.0f (%.0f MiB), want %d (%d MiB)", got, got/(1<<20), tc.want, tc.want>>20)
			}
			if !strings.Contains(c.logs.String(), tc.log) {
				t.Errorf("log lacks %q:\n%s", tc.log, c.logs)
			}
		})
	}
}

// A memory limit on possync's cgroup, as systemd's MemoryMax= sets it,
// becomes the base of the soft limit: a child started in a new memory
// cgroup of 600 MiB gets 300 MiB. The test makes that cgroup itself
// (cgroup v1 memory.limit_in_bytes or v2 memory.max, as root) next to its
// own, and says why when the machine does not let it.
func TestSoftMemoryLimitFromCgroup(t *testing.T) {
	for _, v := range []string{"GOMEMLIMIT", "AUTOMEMLIMIT"} {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	const limit = 600 << 20
	procs := memoryCgroup(t, limit)
	c := startChildWith(t, childOptions{dir: t.TempDir(),
		prefix: []string{"sh", "-c", `echo $$ > "$0" && exec "$@"`, procs}})
	if got := scrape(t, c.url, "go_memlimit_bytes"); got != limit/2 {
		t.Errorf("go_memlimit_bytes = %.0f (%.0f MiB) in a cgroup limited to %d MiB, want %d MiB", got, got/(1<<20), limit>>20, limit>>21)
	}
	if want := `of="memory limit of possync's cgroup"`; !strings.Contains(c.logs.String(), want) {
		t.Errorf("log lacks %s:\n%s", want, c.logs)
	}
}

// memoryCgroup makes a memory cgroup limited to limit bytes under the
// test's own and returns its cgroup.procs file; it is removed when the
// test ends (after the children it held, whose cleanups run first).
func memoryCgroup(t *testing.T, limit int64) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Skipf("no /proc/self/cgroup: %v", err)
	}
	var dir, file string
	for line := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		f := strings.SplitN(line, ":", 3)
		switch {
		case len(f) == 3 && slices.Contains(strings.Split(f[1], ","), "memory"): // v1
			dir, file = filepath.Join("/sys/fs/cgroup/memory", f[2]), "memory.limit_in_bytes"
		case len(f) == 3 && f[0] == "0" && f[1] == "" && dir == "": // v2, unless v1 has memory
			dir, file = filepath.Join("/sys/fs/cgroup", f[2]), "memory.max"
		}
	}
	if dir == "" {
		t.Skip("no memory cgroup for this process")
	}
	cg, err := os.MkdirTemp(dir, "possync-memtest-")
	if err != nil {
		t.Skipf("cannot make a memory cgroup under %s (needs root and a writable cgroup file system): %v", dir, err)
	}
	t.Cleanup(func() {
		if err := os.Remove(cg); err != nil {
			t.Errorf("remove cgroup %s: %v", cg, err)
		}
	})
	if err := os.WriteFile(filepath.Join(cg, file), []byte(strconv.FormatInt(limit, 10)), 0o644); err != nil {
		t.Skipf("cannot limit the memory of cgroup %s (%s): %v", cg, file, err)
	}
	return filepath.Join(cg, "cgroup.procs")
}
