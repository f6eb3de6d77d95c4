package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"possync/appliance"
)

// testMigration is format 2 of the tests: every order gets a companion
// meta key 0x00 "t" + order key holding its revision, written 7 orders
// per transaction, so a store of 20 orders takes several transactions and
// a crash can stop it half done. The record codecs do not change, so both
// builds decode the records; only the format key tells them apart.
var testMigration = migration{name: "test: companion key per order", run: func(bdb *badger.DB) error {
	var keys [][]byte
	err := bdb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{kindOrder}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			keys = append(keys, it.Item().KeyCopy(nil))
		}
		return nil
	})
	for len(keys) > 0 && err == nil {
		n := min(len(keys), 7)
		err = bdb.Update(func(txn *badger.Txn) error {
			for _, k := range keys[:n] {
				item, err := txn.Get(k)
				if err != nil {
					return err
				}
				r, err := readOrder(item)
				if err != nil {
					return err
				}
				if err := txn.Set(companionKey(k), fmt.Append(nil, r.Revision)); err != nil {
					return err
				}
			}
			return nil
		})
		keys = keys[n:]
		if err == nil && len(keys) > 0 {
			err = hook("batch")
		}
	}
	return err
}}

func companionKey(orderKey []byte) []byte { return append([]byte{kindMeta, 't'}, orderKey...) }

// asNewBuild makes this test binary a build whose format is 2 (with
// testMigration) until the test ends; asOldBuild makes it the current
// release again (format 1).
func asNewBuild(t *testing.T) {
	t.Cleanup(func() { migrations, migrateHook = nil, nil })
	migrations = []migration{testMigration}
}

func asOldBuild() { migrations = nil }

var quiet = Options{Logger: slog.New(slog.DiscardHandler)}

// fillFormat1 writes a store of the current release (format 1): two
// multi-sessions, 4 POS, 20 orders (some in the value log) and 20
// broadcasts, bus ids up to 60.
func fillFormat1(t *testing.T, dir string) *appliance.Snapshot {
	t.Helper()
	asOldBuild()
	db, err := Open(dir, quiet)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 20 {
		s := appliance.SessionKey{DB: "shop", ID: int64(1 + i%2)}
		b := &appliance.Batch{
			Sessions: []appliance.SessionRecord{{Key: s, OrderID: int64(i + 1), RunID: 3}},
			POS:      []appliance.POSRecord{{Key: appliance.POSKey{DB: "shop", ID: int64(1 + i%4)}, Session: s.ID, MessageID: int64(10 + i), UserID: 2}},
			Orders: []appliance.OrderRecord{{Key: appliance.OrderKey{Session: s, UID: fmt.Sprintf("00001-001-%04d", i)},
				Revision: int64(i), Nonce: `"n"`, State: appliance.StateDraft, Run: 3, Updated: time.Unix(1700000000, 0),
				Message: fmt.Appendf(nil, `{"uid":%d,"pad":%q}`, i, strings.Repeat("x", i*100))}},
			Broadcasts: []appliance.Broadcast{{FirstID: uint64(3*i + 1), At: time.Unix(1700000000, 0), Prefix: []byte(`{}`),
				Targets: []appliance.Target{{Channel: "a"}, {Channel: "b"}, {Channel: "c"}}}},
		}
		if err := db.Commit(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := db.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return snap
}

// formatValue returns the raw value of the format key of the store in dir.
func formatValue(t *testing.T, dir string) []byte {
	t.Helper()
	bdb, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil).WithReadOnly(true))
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	var v []byte
	if err := bdb.View(func(txn *badger.Txn) error {
		item, err := txn.Get(keyFormat)
		if err == nil {
			v, err = item.ValueCopy(nil)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return v
}

// openAndCompare opens dir, checks that it holds want and every order's
// companion key when companions is set, and that it continues: a commit
// gets the next bus id. It returns the Open error, if any.
func openAndCompare(t *testing.T, dir string, want *appliance.Snapshot, companions bool) error {
	t.Helper()
	db, err := Open(dir, quiet)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx := context.Background()
	got, err := db.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(sortable(got), sortable(want)) {
		t.Errorf("%s: records differ after opening:\n got %+v\nwant %+v", dir, sortable(got), sortable(want))
	}
	if companions {
		n := 0
		db.bdb.View(func(txn *badger.Txn) error {
			for _, o := range want.Orders {
				if _, err := txn.Get(companionKey(orderKey(o.Key))); err == nil {
					n++
				}
			}
			return nil
		})
		if n != len(want.Orders) {
			t.Errorf("%s: %d of %d orders migrated", dir, n, len(want.Orders))
		}
	}
	next := db.lastBus + 1
	if next != want.LastBusID+1 {
		t.Errorf("%s: next bus id %d, want %d", dir, next, want.LastBusID+1)
	}
	if err := db.Commit(ctx, &appliance.Batch{Broadcasts: []appliance.Broadcast{{FirstID: next, Prefix: []byte(`{}`), Targets: []appliance.Target{{Channel: "a"}}}}}); err != nil {
		t.Fatal(err)
	}
	if db.lastBus != next {
		t.Errorf("%s: LastBusID after a commit %d, want %d", dir, db.lastBus, next)
	}
	return nil
}

// sortable drops the time zone of stored times (Load gives local times).
func sortable(s *appliance.Snapshot) string {
	var b strings.Builder
	for _, r := range s.Sessions {
		fmt.Fprintf(&b, "S%v ", r)
	}
	for _, r := range s.POS {
		fmt.Fprintf(&b, "P%v ", r)
	}
	for _, r := range s.Orders {
		fmt.Fprintf(&b, "O%v/%d/%s/%s/%d/%d/%q ", r.Key, r.Revision, r.Nonce, r.State, r.Run, r.Updated.UnixNano(), r.Message)
	}
	for _, r := range s.Broadcasts {
		fmt.Fprintf(&b, "B%d/%d/%v ", r.FirstID, r.At.UnixNano(), r.Targets)
	}
	fmt.Fprintf(&b, "L%d", s.LastBusID)
	return b.String()
}

// A store of the current release (format 1) is migrated by a build with
// format 2 on Open: a copy is kept first, the format key says 2, all
// records are there and the counters continue; a second Open does not
// migrate again.
func TestMigrateOlderStore(t *testing.T) {
	dir := t.TempDir()
	want := fillFormat1(t, dir)
	if v := formatValue(t, dir); !bytes.Equal(v, []byte{1}) {
		t.Fatalf("format of a store of this release = %x, want 01", v)
	}
	rep, err := Check(context.Background(), dir, nil)
	if err != nil || rep.Format != 1 || rep.Migrate {
		t.Fatalf("Check() as the old build = %+v, %v; want format 1, no migration", rep, err)
	}

	asNewBuild(t)
	rep, err = Check(context.Background(), dir, nil)
	if err != nil || rep.Format != 1 || !rep.Migrate || !strings.Contains(rep.FormatNote, "migrated to 2") {
		t.Fatalf("Check() as the new build = %+v, %v; want format 1 to be migrated to 2", rep, err)
	}
	if err := openAndCompare(t, dir, want, true); err != nil {
		t.Fatalf("Open() of a format-1 store = %v", err)
	}
	want.LastBusID++ // the commit of openAndCompare
	if v := formatValue(t, dir); !bytes.Equal(v, []byte{2}) {
		t.Errorf("format after the migration = %x, want 02", v)
	}
	copyFile := filepath.Join(dir, "pre-migration-1-2.backup")
	st1, err := os.Stat(copyFile)
	if err != nil {
		t.Fatalf("no copy kept before the migration: %v", err)
	}
	rep, err = Check(context.Background(), dir, nil)
	if err != nil || rep.Format != 2 || rep.Migrate {
		t.Errorf("Check() after the migration = %+v, %v; want format 2", rep, err)
	}
	migrateHook = func(stage string) error { return fmt.Errorf("migrated again at %s", stage) }
	db, err := Open(dir, quiet)
	if err != nil {
		t.Fatalf("second Open() = %v", err)
	}
	db.Close()
	if st2, _ := os.Stat(copyFile); !st2.ModTime().Equal(st1.ModTime()) {
		t.Errorf("the copy was rewritten by a second Open")
	}
}

// An older build never misreads a newer store: Open and Check refuse it
// with ProblemNewerFormat, naming the found and supported formats, and
// change no file.
func TestNewerFormatRefused(t *testing.T) {
	for _, tc := range []struct {
		name  string
		value []byte
		want  string
	}{
		{"format 2", []byte{2}, "format 2, this possync (dev) reads formats up to 1"},
		{"interrupted migration to 2", []byte{1, 2}, "format 1, migration to 2 interrupted, this possync (dev) reads formats up to 1"},
		{"unknown value", []byte{'v', '3', '.', '0'}, "unknown format value 76332e30"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			fillFormat1(t, dir)
			bdb, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
			if err != nil {
				t.Fatal(err)
			}
			if err := bdb.Update(func(txn *badger.Txn) error { return txn.Set(keyFormat, tc.value) }); err != nil {
				t.Fatal(err)
			}
			bdb.Close()
			before := listDir(t, dir)
			_, err = Check(context.Background(), dir, nil)
			var oe *OpenError
			if !errors.As(err, &oe) || oe.Problem != ProblemNewerFormat || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Check() = %v, want a %q OpenError saying %q", err, ProblemNewerFormat, tc.want)
			}
			if after := listDir(t, dir); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Errorf("files changed by Check: %v, before %v", after, before)
			}
			_, err = Open(dir, quiet)
			if !errors.As(err, &oe) || oe.Problem != ProblemNewerFormat || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open() = %v, want a %q OpenError saying %q", err, ProblemNewerFormat, tc.want)
			}
			// Badger's own start may add an empty value-log file; no file
			// of the store is removed or changed.
			after := strings.Join(listDir(t, dir), " ")
			for _, f := range before {
				if !strings.Contains(after, f) {
					t.Errorf("Open() changed or removed %s: now %s", f, after)
				}
			}
			if v := formatValue(t, dir); !bytes.Equal(v, tc.value) {
				t.Errorf("format key after the refusal = %x, want %x", v, tc.value)
			}
		})
	}
}

// crashCopy copies the regular files of src into a new directory, as a
// kill -9 or power cut would leave them (every commit is fsynced).
func crashCopy(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || e.Name() == "LOCK" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err == nil {
			err = os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// A crash at any point of a migration leaves a store that the new build
// opens, finishing the migration, with every record; the old build either
// opens it as format 1 (crash before the marker) or refuses it as newer,
// and then the copy kept before the migration restores under the old
// build with every record. Never neither.
func TestMigrationCrash(t *testing.T) {
	dir := t.TempDir()
	want := fillFormat1(t, dir)
	asNewBuild(t)
	crashes := map[string]string{}
	migrateHook = func(stage string) error {
		if _, ok := crashes[stage]; !ok {
			crashes[stage] = crashCopy(t, dir)
		}
		return nil
	}
	db, err := Open(dir, quiet)
	if err != nil {
		t.Fatalf("Open() = %v", err)
	}
	db.Close()
	migrateHook = nil
	if len(crashes) != 4 {
		t.Fatalf("crash points reached: %v, want copy-written, marked, batch, ran", crashes)
	}
	for stage, crashed := range crashes {
		t.Run(stage, func(t *testing.T) {
			old := crashCopy(t, crashed)
			asOldBuild()
			err := openAndCompare(t, old, want, false)
			var oe *OpenError
			switch {
			case stage == "copy-written" && err != nil:
				t.Errorf("old build on a store crashed before the marker: %v, want it to open as format 1", err)
			case stage != "copy-written" && (!errors.As(err, &oe) || oe.Problem != ProblemNewerFormat ||
				!strings.Contains(err.Error(), "pre-migration-1-2.backup")):
				t.Errorf("old build on a half-migrated store: %v, want newer format naming the copy", err)
			case stage != "copy-written":
				restored := filepath.Join(t.TempDir(), "restored")
				f, err := os.Open(filepath.Join(old, "pre-migration-1-2.backup"))
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if _, err := Restore(restored, f, quiet); err != nil {
					t.Fatalf("old build restoring the copy: %v", err)
				}
				if err := openAndCompare(t, restored, want, false); err != nil {
					t.Errorf("old build opening the restored copy: %v", err)
				}
			}

			migrations = []migration{testMigration}
			if err := openAndCompare(t, crashed, want, true); err != nil {
				t.Errorf("new build on the crashed store: %v, want it to finish the migration", err)
			}
			if v := formatValue(t, crashed); !bytes.Equal(v, []byte{2}) {
				t.Errorf("format after the new build opened it = %x, want 02", v)
			}
		})
	}
}

// A migration step that fails makes Open return ProblemMigration; the
// next Open resumes it. No room for the copy leaves the store untouched.
func TestMigrationFailureResumes(t *testing.T) {
	dir := t.TempDir()
	want := fillFormat1(t, dir)
	asNewBuild(t)
	migrateHook = func(stage string) error {
		if stage == "batch" {
			return io.ErrUnexpectedEOF
		}
		return nil
	}
	_, err := Open(dir, quiet)
	var oe *OpenError
	if !errors.As(err, &oe) || oe.Problem != ProblemMigration || !strings.Contains(err.Error(), "resumes") {
		t.Fatalf("Open() with a failing step = %v, want a %q OpenError", err, ProblemMigration)
	}
	rep, err := Check(context.Background(), dir, nil)
	if err != nil || !rep.Migrate || !strings.Contains(rep.FormatNote, "interrupted") {
		t.Errorf("Check() of a half-migrated store = %+v, %v", rep, err)
	}
	migrateHook = nil
	if err := openAndCompare(t, dir, want, true); err != nil {
		t.Fatalf("Open() after the failure = %v, want the migration resumed", err)
	}

	// No room for the copy (the write fails: ENOSPC): refused before
	// anything changes.
	dir = t.TempDir()
	fillFormat1(t, dir)
	asNewBuild(t)
	migrateHook = func(stage string) error {
		if stage == "copy-written" {
			return syscall.ENOSPC
		}
		return nil
	}
	_, err = Open(dir, quiet)
	if !errors.As(err, &oe) || oe.Problem != ProblemMigration || !strings.Contains(err.Error(), "unchanged") {
		t.Fatalf("Open() without room for the copy = %v, want a %q OpenError", err, ProblemMigration)
	}
	if v := formatValue(t, dir); !bytes.Equal(v, []byte{1}) {
		t.Errorf("format after a refused migration = %x, want 01", v)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "pre-migration-*")); len(m) != 0 {
		t.Errorf("files left by a refused migration: %v", m)
	}
}

// A backup keeps its format through a restore: a format-2 backup restores
// as format 2 (no migration), a format-1 backup restored by the new build
// is migrated, and the old build refuses a format-2 backup.
func TestBackupRestoreKeepsFormat(t *testing.T) {
	dir := t.TempDir()
	want := fillFormat1(t, dir)
	backup := func(dir string) []byte {
		db, err := Open(dir, quiet)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var buf bytes.Buffer
		if err := db.Backup(&buf); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	v1 := backup(dir)
	asNewBuild(t)
	v2 := backup(dir) // migrates dir first

	r2 := filepath.Join(t.TempDir(), "r2")
	if _, err := Restore(r2, bytes.NewReader(v2), quiet); err != nil {
		t.Fatalf("Restore(format-2 backup) = %v", err)
	}
	if v := formatValue(t, r2); !bytes.Equal(v, []byte{2}) {
		t.Errorf("format of a restored format-2 backup = %x, want 02", v)
	}
	if m, _ := filepath.Glob(filepath.Join(r2, "pre-migration-*")); len(m) != 0 {
		t.Errorf("restoring a current backup migrated it: %v", m)
	}
	if err := openAndCompare(t, r2, want, true); err != nil {
		t.Fatal(err)
	}

	r1 := filepath.Join(t.TempDir(), "r1")
	if _, err := Restore(r1, bytes.NewReader(v1), quiet); err != nil {
		t.Fatalf("Restore(format-1 backup) by the new build = %v", err)
	}
	if v := formatValue(t, r1); !bytes.Equal(v, []byte{2}) {
		t.Errorf("format of a restored format-1 backup = %x, want 02 (migrated)", v)
	}
	if err := openAndCompare(t, r1, want, true); err != nil {
		t.Fatal(err)
	}

	asOldBuild()
	r3 := filepath.Join(t.TempDir(), "r3")
	_, err := Restore(r3, bytes.NewReader(v2), quiet)
	var oe *OpenError
	if !errors.As(err, &oe) || oe.Problem != ProblemNewerFormat {
		t.Errorf("old build restoring a format-2 backup = %v, want %q", err, ProblemNewerFormat)
	}
}

// The store of the previous release on disk (testdata/store-format1,
// written by possync serve, see cmd/possync/format_test.go) migrates to
// format 2 with every record, and the counters continue.
func TestFixtureMigrates(t *testing.T) {
	dir := t.TempDir()
	entries, err := os.ReadDir("../testdata/store-format1")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("../testdata/store-format1", e.Name()))
		if err == nil && e.Name() != "fixture.json" {
			err = os.WriteFile(filepath.Join(dir, e.Name()), b, 0o600)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	asOldBuild()
	db, err := Open(crashCopy(t, dir), quiet)
	if err != nil {
		t.Fatalf("Open(fixture) by this release = %v", err)
	}
	want, err := db.Load(context.Background())
	db.Close()
	if err != nil || len(want.Orders) != 6 || want.LastBusID == 0 {
		t.Fatalf("fixture holds %d orders, last bus id %d (%v); want 6 and some", len(want.Orders), want.LastBusID, err)
	}
	asNewBuild(t)
	if err := openAndCompare(t, dir, want, true); err != nil {
		t.Fatalf("Open(fixture) by the new build = %v", err)
	}
	if v := formatValue(t, dir); !bytes.Equal(v, []byte{2}) {
		t.Errorf("format after migrating the fixture = %x, want 02", v)
	}
}
