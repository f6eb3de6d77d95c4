package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Issue 10, backup and restore, with real processes: while a till keeps
// writing, `possync backup` fetches an online backup from the running
// server; `possync restore` puts it into an empty directory (and refuses
// a non-empty one); a server started on it holds every order acknowledged
// before the backup began, with its number, and goes on numbering, per-POS
// message_IDs and bus ids above what the backup held.
func TestBackupRestoreUnderLoad(t *testing.T) {
	dirA := t.TempDir()
	a := startChild(t, dirA)
	_, data := listOrders(t, a.url, 1, 1)
	msgBefore := n(data["message_ID"])

	var (
		mu      sync.Mutex
		acked   = map[string]int{} // uid → number
		stop    atomic.Bool
		wg      sync.WaitGroup
		ackedAt = func() map[string]int {
			mu.Lock()
			defer mu.Unlock()
			m := make(map[string]int, len(acked))
			for k, v := range acked {
				m[k] = v
			}
			return m
		}
	)
	wg.Go(func() {
		for i := 1; !stop.Load(); i++ {
			uid := fmt.Sprintf("b%05d", i)
			res, err := msUpdate(t, a.url, 1, order(uid, i, 1, fmt.Sprintf("n%d", i)))
			if err != nil {
				t.Errorf("write %s: %v", uid, err)
				return
			}
			mu.Lock()
			acked[uid] = n(res["order_ID"])
			mu.Unlock()
		}
	})
	for len(ackedAt()) < 50 {
		if t.Failed() {
			t.FailNow()
		}
		time.Sleep(10 * time.Millisecond)
	}
	before := ackedAt()
	busBefore := newestBusID(t, a.url)
	file := filepath.Join(t.TempDir(), "possync.backup")
	out, stderr, code := runPossync(t, "backup", "-url", a.url, "-o", file)
	during := len(ackedAt())
	stop.Store(true)
	wg.Wait()
	if code != 0 {
		t.Fatalf("backup: exit %d: %s %s\n%s", code, out, stderr, a.logs)
	}
	t.Logf("backup: %s (%d orders acknowledged before it started, %d by its end)", strings.TrimSpace(out), len(before), during)
	written, _ := os.ReadFile(file)
	if _, stderr, code := runPossync(t, "backup", "-url", a.url, "-o", file); code == 0 || !strings.Contains(stderr, "exists") {
		t.Errorf("backup onto an existing file: exit %d, %q; want a refusal", code, stderr)
	}
	if again, _ := os.ReadFile(file); !bytes.Equal(again, written) {
		t.Errorf("a refused backup changed the existing file")
	}
	a.stop(t)

	// The checksum file: sha256sum(1) format, matching the backup.
	sumLine, err := os.ReadFile(file + ".sha256")
	if err != nil {
		t.Fatalf("backup wrote no checksum file: %v", err)
	}
	if want := fmt.Sprintf("%x  %s\n", sha256.Sum256(written), filepath.Base(file)); string(sumLine) != want {
		t.Errorf("checksum file holds %q, want %q", sumLine, want)
	}
	other := filepath.Join(t.TempDir(), "other.backup")
	os.WriteFile(other+".sha256", []byte("keep"), 0o600)
	if _, stderr, code := runPossync(t, "backup", "-url", a.url, "-o", other); code == 0 || !strings.Contains(stderr, "other.backup.sha256 exists") {
		t.Errorf("backup next to an existing checksum file: exit %d, %q; want a refusal naming it", code, stderr)
	}
	if _, err := os.Stat(other); err == nil {
		t.Errorf("a refused backup wrote %s", other)
	}
	// A damaged copy with its checksum file is refused and nothing is
	// created; a copy without one is restored with a warning (below).
	damaged := filepath.Join(t.TempDir(), "damaged.backup")
	flipped := bytes.Clone(written)
	flipped[len(flipped)/2] ^= 0x01
	os.WriteFile(damaged, flipped, 0o600)
	os.WriteFile(damaged+".sha256", sumLine, 0o600)
	dirD := filepath.Join(t.TempDir(), "from-damaged")
	if _, stderr, code := runPossync(t, "restore", damaged, "-data", dirD); code != 1 || !strings.Contains(stderr, "does not match its checksum") {
		t.Errorf("restore of a damaged backup: exit %d, %q; want exit 1 naming the checksum", code, stderr)
	}
	if _, err := os.Stat(dirD); err == nil {
		t.Errorf("a refused restore created %s", dirD)
	}
	bare := filepath.Join(t.TempDir(), "bare.backup")
	os.WriteFile(bare, written, 0o600)
	dirN := filepath.Join(t.TempDir(), "from-bare")
	if _, stderr, code := runPossync(t, "restore", bare, "-data", dirN); code != 0 || !strings.Contains(stderr, "not verified") {
		t.Errorf("restore of a backup without a checksum file: exit %d, %q; want it restored with a warning", code, stderr)
	}

	full := t.TempDir()
	os.WriteFile(filepath.Join(full, "x"), []byte("x"), 0o600)
	if _, _, code := runPossync(t, "restore", file, "-data", full); code == 0 {
		t.Errorf("restore into a non-empty directory: exit 0, want a refusal")
	}
	dirB := filepath.Join(t.TempDir(), "restored")
	out, stderr, code = runPossync(t, "restore", file, "-data", dirB)
	if code != 0 {
		t.Fatalf("restore: exit %d: %s %s", code, out, stderr)
	}
	if !strings.Contains(out, "matches its checksum") {
		t.Errorf("restore did not say it verified the checksum: %q", out)
	}
	t.Logf("restore: %s", strings.TrimSpace(out))

	b := startChild(t, dirB)
	orders, data := listOrders(t, b.url, 1, 1)
	if m := n(data["message_ID"]); m <= msgBefore {
		t.Errorf("message_ID after restore %d, want above %d answered before the backup", m, msgBefore)
	}
	maxNum := 0
	for uid, num := range before {
		d, ok := orders[uid]
		if !ok {
			t.Errorf("order %s acknowledged before the backup is not in the restored store", uid)
			continue
		}
		if got := n(d["sequence_number"]); got != num {
			t.Errorf("order %s restored with number %d, acknowledged %d", uid, got, num)
		}
	}
	for _, d := range orders {
		maxNum = max(maxNum, n(d["sequence_number"]))
	}
	res := mustUpdate(t, b.url, order("after-restore", 1, 1, "z"))
	if num := n(res["order_ID"]); num <= maxNum {
		t.Errorf("first order after restore numbered %d, want above %d (the highest restored)", num, maxNum)
	}
	if bus := newestBusID(t, b.url); bus <= busBefore {
		t.Errorf("bus id after restore %d, want above %d (before the backup)", bus, busBefore)
	}
	t.Logf("restored %d orders; %d acknowledged before the backup all present; numbering continued above %d", len(orders), len(before), maxNum)
}
