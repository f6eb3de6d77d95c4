package httpapi_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"possync/appliance/apptest"
)

// mountSmallTmpfs mounts a tmpfs of size on a temporary directory for the
// test, or skips the test when not root.
func mountSmallTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs as the data file system (run the tests as root, e.g. sudo build/test.sh)")
	}
	mnt := t.TempDir()
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size="+size); err != nil {
		t.Fatalf("mount tmpfs on %s: %v", mnt, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	return mnt
}

// fillTo allocates a file on mnt so that about left bytes stay free.
func fillTo(t *testing.T, mnt string, left int64) string {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(mnt, &st); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(mnt, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Fallocate(int(f.Fd()), 0, 0, int64(st.Bavail)*st.Bsize-left); err != nil {
		t.Fatalf("fallocate: %v", err)
	}
	return filler
}

// Issue 10, disk full, on a real 96 MiB tmpfs: an empty one takes writes;
// with 7 MiB free an update gets a JSON-RPC error saying the disk is full
// and changes nothing; a till that reloads still gets the shop's open
// orders from sync_all, with a message_ID that needs no durable write (the
// POS's stored counter); polls keep answering; once space is freed writes
// succeed again without a restart, and both the running till and the
// reloaded one see the next update with no message_ID gap.
func TestDiskFullUpdatesRefusedSyncAllAndPollsAnswer(t *testing.T) {
	mnt := mountSmallTmpfs(t, "96m")
	srv := newServer(t, apptest.Options{Dir: filepath.Join(mnt, "data")})
	a := openPOS(t, srv, cfg("shop", 1, 1, 7))
	b := openPOS(t, srv, cfg("shop", 1, 2, 8))

	o := a.NewOrder(1)
	line := a.AddLine(o, 10, 1, 2.5)
	if _, err := a.UpdateOrder(o); err != nil {
		t.Fatalf("update_order on an empty 96 MiB file system: %v", err)
	}
	if _, _, err := b.WaitAction(10*time.Second, "update_order", o.UID()); err != nil {
		t.Fatal(err)
	}

	filler := fillTo(t, mnt, 7<<20)
	o.SetQty(line, 5)
	_, err := a.UpdateOrder(o)
	if err == nil || !containsFold(err.Error(), "disk is full") || !containsFold(err.Error(), "StoreUnavailable") {
		t.Fatalf("update_order with 7 MiB free = %v, want a StoreUnavailable JSON-RPC error saying the disk is full", err)
	}
	t.Logf("update_order with 7 MiB free: %v", err)

	// A till that reloads (its browser tab) while the disk is full.
	b2 := apptest.NewTerminal(t, srv.URL, cfg("shop", 1, 2, 8))
	res, err := b2.SyncAll(true, "")
	if err != nil {
		t.Fatalf("sync_all on a full disk: %v, want the stored open orders", err)
	}
	data, _ := res["data"].(map[string]any)
	orders, _ := data["orders"].([]any)
	if len(orders) != 1 {
		t.Fatalf("sync_all on a full disk answered %d orders, want 1: %v", len(orders), res)
	}
	got := apptest.OrderFromData(orders[0].(map[string]any)["data"].(map[string]any))
	if got.UID() != o.UID() || got.Revision() != 1 || apptest.Int(got.Line(line)["qty"]) != 1 {
		t.Errorf("sync_all on a full disk: order %s rev %d qty %v, want %s rev 1 qty 1 (the refused update changed nothing)",
			got.UID(), got.Revision(), got.Line(line)["qty"], o.UID())
	}
	if m := apptest.Int(data["message_ID"]); m != b.MessageID() {
		t.Errorf("sync_all on a full disk: message_ID %d, want the POS's stored counter %d (no durable write)", m, b.MessageID())
	}
	if _, _, err := b2.PollOnce(b.Last()); err != nil {
		t.Errorf("poll on a full disk: %v", err)
	}

	// Space comes back: the next write goes through by itself.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	b2.SetLast(b.Last())
	b2.StartPolling()
	if _, err := a.UpdateOrder(o); err != nil {
		t.Fatalf("update_order after freeing space: %v", err)
	}
	if o.Revision() != 2 {
		t.Errorf("revision after freeing space = %d, want 2", o.Revision())
	}
	for _, term := range []*apptest.Terminal{b, b2} {
		if _, _, err := term.WaitAction(10*time.Second, "update_order", o.UID()); err != nil {
			t.Fatalf("%v: %v", term, err)
		}
		if gaps := term.Gaps(); len(gaps) != 0 {
			t.Errorf("%v saw message_ID gaps %v", term, gaps)
		}
	}
}
