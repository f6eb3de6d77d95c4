package storage

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"possync/appliance"
)

func TestChooseReserve(t *testing.T) {
	const mi = 1 << 20
	for _, tc := range []struct {
		configured, total, want uint64
		warn                    bool
	}{
		{0, 0, 128 * mi, false},            // not measured: the full reserve
		{0, 96 * mi, 12 * mi, false},       // a small file system: an eighth
		{0, 16 * mi, 4 * mi, false},        // the floor
		{0, 6 * mi, 3 * mi, false},         // never above half the file system
		{0, 32 << 30, 128 * mi, false},     // a 32 GiB card: the ceiling
		{20 * mi, 96 * mi, 20 * mi, false}, // configured
		{64 * mi, 96 * mi, 48 * mi, true},  // configured above half: capped, warned
	} {
		got, warning := chooseReserve(tc.configured, tc.total)
		if got != tc.want || (warning != "") != tc.warn {
			t.Errorf("chooseReserve(%d MiB, %d MiB) = %d MiB, %q; want %d MiB, warning %v",
				tc.configured/mi, tc.total/mi, got/mi, warning, tc.want/mi, tc.warn)
		}
	}
}

// On a 96 MiB file system (issue 10): an empty store takes writes (the old
// fixed 128 MiB reserve refused them all), 7 MiB free refuses them with
// "disk is full", and freeing space lets them through again.
func TestReserveScalesWithFileSystem(t *testing.T) {
	dir := mountTmpfs(t, "96m", false)
	db, err := Open(filepath.Join(dir, "data"), Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx := context.Background()
	batch := &appliance.Batch{Sessions: []appliance.SessionRecord{{Key: appliance.SessionKey{DB: "d", ID: 1}, OrderID: 1}}}
	if db.reserve != 12<<20 {
		t.Errorf("reserve on a 96 MiB file system = %d MiB, want 12 MiB", db.reserve>>20)
	}
	if err := db.Commit(ctx, batch); err != nil {
		t.Fatalf("Commit() on an empty 96 MiB file system = %v, want nil", err)
	}
	filler := fill(t, dir, 7<<20)
	err = db.Commit(ctx, batch)
	if appliance.ErrorCode(err) != appliance.EUNAVAILABLE || !strings.Contains(err.Error(), "disk is full") {
		t.Errorf("Commit() with 7 MiB free = %v, want EUNAVAILABLE … disk is full", err)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := db.Commit(ctx, batch); err != nil {
		t.Errorf("Commit() after freeing space = %v, want nil", err)
	}
}

// Writing real orders until the store refuses them on a 96 MiB file
// system, then running value-log GC, a flatten (compactions) and Close:
// none of it may crash the process (a SIGBUS from a write into an mmapped
// hole would kill the test binary), and after reopening every
// acknowledged order is there with its revision and message.
func TestFillUntilRefusedThenGCAndReopen(t *testing.T) {
	dir := mountTmpfs(t, "96m", false)
	data := filepath.Join(dir, "data")
	db, err := Open(data, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	key := appliance.SessionKey{DB: "d", ID: 1}
	msg := func(i int) []byte {
		return []byte(fmt.Sprintf(`{"action":"update_order","data":{"uid":"u%06d","pad":"%s"}}`, i, strings.Repeat("x", 16<<10)))
	}
	acked := 0
	var refused error
	for i := 0; i < 20000; i++ {
		b := &appliance.Batch{Orders: []appliance.OrderRecord{{
			Key: appliance.OrderKey{Session: key, UID: fmt.Sprintf("u%06d", i)}, Revision: int64(i + 1),
			State: appliance.StateDraft, Message: msg(i)}}}
		if err := db.Commit(ctx, b); err != nil {
			refused = err
			break
		}
		acked++
	}
	if appliance.ErrorCode(refused) != appliance.EUNAVAILABLE || !strings.Contains(refused.Error(), "disk is full") {
		t.Fatalf("after %d orders Commit() = %v, want EUNAVAILABLE … disk is full", acked, refused)
	}
	st, _ := db.Stats()
	t.Logf("refused after %d acknowledged orders of 16 KiB: %d MiB free of %d MiB, reserve %d MiB",
		acked, st.FreeBytes>>20, st.TotalBytes>>20, db.reserve>>20)

	// Background work that cannot be refused: GC and compactions.
	db.runGC()
	if err := db.bdb.Flatten(1); err != nil {
		t.Logf("Flatten on a full disk: %v (an error is fine, a crash is not)", err)
	}
	if err := db.Close(); err != nil {
		t.Logf("Close on a full disk: %v", err)
	}

	db, err = Open(data, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("reopen after filling the disk: %v", err)
	}
	defer db.Close()
	for i := 0; i < acked; i++ {
		rec, err := db.Order(ctx, appliance.OrderKey{Session: key, UID: fmt.Sprintf("u%06d", i)})
		if err != nil || rec.Revision != int64(i+1) || string(rec.Message) != string(msg(i)) {
			t.Fatalf("acknowledged order %d after reopen: rev %d, %v; want rev %d and its message", i, rec.Revision, err, i+1)
		}
	}
	t.Logf("all %d acknowledged orders read back after reopen", acked)
}
