package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// lastJSON returns the last line of out decoded as a JSON object.
func lastJSON(t *testing.T, out string) map[string]any {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &m); err != nil {
		t.Fatalf("last stdout line is not a JSON object: %v\n%s", err, out)
	}
	return m
}

var requiredKeys = []string{"pos", "rate", "duration_s", "updates_acked", "deliveries", "deliveries_expected", "gaps",
	"errors", "ack_p50_ms", "ack_p99_ms", "fanout_p50_ms", "fanout_p99_ms", "fanout_max_ms", "server_rss_mb", "server_cpu_s"}

// checkSide asserts that every update was acknowledged and delivered to
// every other terminal, with no gap and no error.
func checkSide(t *testing.T, name string, m map[string]any) {
	t.Helper()
	for _, k := range requiredKeys {
		if _, ok := m[k]; !ok && !(name != "possync" && (k == "pos" || k == "rate" || k == "duration_s")) {
			t.Errorf("%s: key %q missing in %v", name, k, m)
		}
	}
	num := func(k string) float64 { f, _ := m[k].(float64); return f }
	if num("updates_acked") < 30 {
		t.Errorf("%s: updates_acked = %v, want about 40 (20/s for 2 s)", name, m["updates_acked"])
	}
	if num("deliveries") != num("deliveries_expected") || num("deliveries_expected") != 4*num("updates_acked") {
		t.Errorf("%s: deliveries %v, expected %v, want 4 × %v acknowledged", name, m["deliveries"], m["deliveries_expected"], m["updates_acked"])
	}
	if num("gaps") != 0 || num("errors") != 0 {
		t.Errorf("%s: gaps %v, errors %v, want 0 (last error: %v)", name, m["gaps"], m["errors"], m["last_error"])
	}
	if num("fanout_p50_ms") <= 0 || num("fanout_max_ms") < num("fanout_p99_ms") {
		t.Errorf("%s: fan-out p50 %v p99 %v max %v", name, m["fanout_p50_ms"], m["fanout_p99_ms"], m["fanout_max_ms"])
	}
}

// TestSpawnFanout runs the generator against a spawned possync (built
// from this module, real sockets, Badger with SyncWrites): 5 terminals,
// 20 updates/s, 2 s.
func TestSpawnFanout(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts possync")
	}
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := run(ctx, []string{"-spawn", "-pos", "5", "-rate", "20", "-duration", "2s", "-progress", "0"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\nstderr:\n%s\nstdout:\n%s", err, stderr.String(), stdout.String())
	}
	m := lastJSON(t, stdout.String())
	checkSide(t, "possync", m)
	if m["server_rss_mb"] == nil || m["server_rss_mb"].(float64) <= 0 {
		t.Errorf("server_rss_mb = %v, want the spawned server's RSS", m["server_rss_mb"])
	}
}

// TestSpawnFanoutNchan is TestSpawnFanout with the nginx + nchan peer; it
// installs nginx and libnginx-mod-nchan with apt-get when missing and is
// skipped (saying why) only when that is impossible.
func TestSpawnFanoutNchan(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts possync and nginx")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, _, err := ensureNchan(ctx, &bytes.Buffer{}); err != nil {
		if _, aptErr := exec.LookPath("apt-get"); aptErr != nil {
			t.Skipf("nginx + nchan cannot be installed here: %v", err)
		}
		t.Skipf("nginx + nchan could not be installed with apt-get (not root, or no package source?): %v", err)
	}
	var stdout, stderr bytes.Buffer
	err := run(ctx, []string{"-spawn", "-pos", "5", "-rate", "20", "-duration", "2s", "-progress", "0", "-peer", "nchan"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\nstderr:\n%s\nstdout:\n%s", err, stderr.String(), stdout.String())
	}
	m := lastJSON(t, stdout.String())
	checkSide(t, "possync", m)
	peer, ok := m["peer"].(map[string]any)
	if !ok || peer["name"] != "nchan" {
		t.Fatalf("peer = %v, want an object named nchan", m["peer"])
	}
	checkSide(t, "nchan", peer)
	for _, k := range []string{"ratio_p50", "ratio_p99"} {
		if r, _ := m[k].(float64); r <= 0 {
			t.Errorf("%s = %v, want > 0", k, m[k])
		}
	}
}

func TestIDGroups(t *testing.T) {
	ids := make([]string, 300)
	for i := range ids {
		ids[i] = channelID(&termInfo{pos: i + 1})
	}
	groups := idGroups(ids, maxIDList)
	if len(groups) < 2 {
		t.Fatalf("idGroups(300 ids) = %d groups, want several", len(groups))
	}
	n := 0
	for _, g := range groups {
		if len(g) > maxIDList {
			t.Errorf("group of %d characters, want ≤ %d", len(g), maxIDList)
		}
		n += len(strings.Split(g, ","))
	}
	if n != len(ids) {
		t.Errorf("groups hold %d ids, want %d", n, len(ids))
	}
}
