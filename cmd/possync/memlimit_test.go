package main

import (
	"bufio"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// memoryAvailable returns what the test process may use, as the kernel
// sees it: the smallest memory.max on its cgroup v2 path, else MemTotal.
// A child started by the test is in the same cgroup.
func memoryAvailable(t *testing.T) uint64 {
	t.Helper()
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var avail uint64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kib, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("MemTotal %q: %v", v, err)
			}
			avail = kib << 10
		}
	}
	if avail == 0 {
		t.Fatal("no MemTotal in /proc/meminfo")
	}
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return avail
	}
	for line := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		path, ok := strings.CutPrefix(line, "0::")
		if !ok {
			continue
		}
		for dir := filepath.Join("/sys/fs/cgroup", path); strings.HasPrefix(dir, "/sys/fs/cgroup"); dir = filepath.Dir(dir) {
			m, err := os.ReadFile(filepath.Join(dir, "memory.max"))
			if err != nil {
				continue
			}
			if v, err := strconv.ParseUint(strings.TrimSpace(string(m)), 10, 64); err == nil && v < avail {
				avail = v
			}
		}
	}
	return avail
}

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
	half := int64(memoryAvailable(t) / 2)
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
