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

// Issue 10: value-log GC and compactions on a full data file system (the
// store refuses writes at its reserve) must not crash the process (Badger
// writes tables and value logs through mmapped sparse files, where running
// out of space is a SIGBUS that kills the test binary), and once space is
// freed writes succeed again without a restart, with every acknowledged
// order intact. Known limit: if another writer takes the reserve too (0
// bytes free), a compaction does die of SIGBUS in table.CreateTable; the
// box keeps the store on its own partition for that reason.
func TestGCAndCompactionOnFullDiskThenWritesResume(t *testing.T) {
	// 160 MiB: the 64 MiB value-log files rotate, so GC has older files
	// to rewrite. The ballast is other data the owner deletes at the end
	// (the store itself fills the file system down to its reserve).
	dir := mountTmpfs(t, "160m", false)
	ballast := filepath.Join(dir, "ballast")
	if err := os.WriteFile(ballast, make([]byte, 24<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	db, err := Open(data, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() }) // the last db: the closure reads the variable
	ctx := context.Background()
	key := appliance.SessionKey{DB: "d", ID: 1}
	msg := func(i, rev int) []byte {
		return []byte(fmt.Sprintf(`{"data":{"uid":"u%03d","rev":%d,"pad":"%s"}}`, i, rev, strings.Repeat("x", 16<<10)))
	}
	rev := map[int]int{}
	commit := func(i int) error {
		r := rev[i] + 1
		b := &appliance.Batch{Orders: []appliance.OrderRecord{{Key: appliance.OrderKey{Session: key, UID: fmt.Sprintf("u%03d", i)},
			Revision: int64(r), State: appliance.StateDraft, Message: msg(i, r)}}}
		err := db.Commit(ctx, b)
		if err == nil {
			rev[i] = r
		}
		return err
	}
	// 200 orders rewritten over and over: most of the value log is garbage
	// for GC to reclaim, and the LSM tree gets tables to compact.
	// A close flushes the memtable into a table file (keys and value
	// pointers are small: 8 MiB of memtable would hold the whole run),
	// so closing every 1500 writes leaves level-0 tables to compact.
	writes := 0
	var refused error
	for n := 0; refused == nil && n < 100000; n++ {
		if refused = commit(n % 200); refused == nil {
			writes++
		}
		if writes%1500 == 1499 {
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			if db, err = Open(data, Options{Logger: slog.New(slog.DiscardHandler)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if appliance.ErrorCode(refused) != appliance.EUNAVAILABLE {
		t.Fatalf("after %d writes Commit() = %v, want the disk-full refusal", writes, refused)
	}
	st, _ := db.Stats()
	t.Logf("%d writes acknowledged, then refused: %v", writes, refused)

	// Background work that cannot be refused runs in the reserve the
	// refusal keeps: compactions (Flatten), then value-log GC.
	if err := db.bdb.Flatten(1); err != nil {
		t.Logf("compaction (Flatten) on the full disk: %v", err)
	}
	db.runGC()
	st2, _ := db.Stats()
	t.Logf("compaction and value-log GC on the full disk: %d value-log files rewritten; free %d → %d KiB (reserve %d KiB)",
		db.gcRewrites.Load(), st.FreeBytes>>10, st2.FreeBytes>>10, db.reserve>>10)
	if st2.FreeBytes >= db.reserve {
		t.Logf("GC freed enough space to take writes again")
	} else if err := commit(0); err == nil {
		t.Errorf("a write succeeded below the reserve")
	}

	// The owner deletes other data: writes succeed again, no restart.
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	resumed := 0
	for i := range 20 {
		if err := commit(i); err != nil {
			t.Fatalf("write %d after freeing space, without a restart: %v", i, err)
		}
		resumed++
	}
	db.runGC()
	t.Logf("after freeing space: %d writes succeeded, GC rewrote %d files in all", resumed, db.gcRewrites.Load())
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	db, err = Open(data, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer db.Close()
	for i, r := range rev {
		rec, err := db.Order(ctx, appliance.OrderKey{Session: key, UID: fmt.Sprintf("u%03d", i)})
		if err != nil || rec.Revision != int64(r) || string(rec.Message) != string(msg(i, r)) {
			t.Fatalf("order %d after reopen: rev %d, %v; want its last acknowledged rev %d", i, rec.Revision, err, r)
		}
	}
}
