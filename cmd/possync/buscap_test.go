package main

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// bus.max_retained_mib from a config file reaches the engine: a server
// with the smallest cap (8 MiB) that is sent about 12 MiB of notifications
// drops the oldest before their retention ends, says so in its log, and
// keeps possync_bus_retained_bytes under the cap. With the default cap
// (64 MiB) the same writes would be kept whole for the 10-minute retention.
func TestBusMemoryCapFromConfig(t *testing.T) {
	c := startChildWith(t, childOptions{dir: t.TempDir(), config: "[bus]\nmax_retained_mib = 8\n[orders]\npurge_interval = \"1s\"\n"})
	const capBytes = 8 << 20
	mustUpdate(t, c.url, syncAll(2))    // a second POS of the multi-session, to which POS 1's updates are broadcast
	note := strings.Repeat("x", 48<<10) // an order with a long kitchen note: ~48 KiB per notification
	sent := 0
	for i := 1; i <= 250 && !strings.Contains(c.logs.String(), "bus memory cap reached"); i++ {
		o := order(fmt.Sprintf("cap%04d", i), i, 1, fmt.Sprintf("n%d", i))
		o["data"].(map[string]any)["note"] = note
		mustUpdate(t, c.url, o)
		sent += len(note)
	}
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end) && !strings.Contains(c.logs.String(), "bus memory cap reached"); {
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(c.logs.String(), "bus memory cap reached") {
		t.Fatalf("sent %d MiB of notifications to a server with bus.max_retained_mib = 8 (retained %.0f bytes): no cap warning in its log\n%s",
			sent>>20, scrape(t, c.url, "possync_bus_retained_bytes"), c.logs)
	}
	if !strings.Contains(c.logs.String(), fmt.Sprintf("max_retained_bytes=%d", capBytes)) {
		t.Errorf("the cap warning does not name the configured cap (%d bytes):\n%s", capBytes, c.logs)
	}
	time.Sleep(2 * time.Second) // a purge after the last write
	kept := scrape(t, c.url, "possync_bus_retained_bytes")
	if kept > capBytes {
		t.Errorf("possync_bus_retained_bytes = %.0f after a purge, above the configured %d", kept, capBytes)
	}
	t.Logf("sent %.1f MiB of notes; retained %.1f MiB under the 8 MiB cap", float64(sent)/(1<<20), kept/(1<<20))
}
