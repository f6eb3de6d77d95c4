package storage

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"possync/appliance"
)

// mountTmpfs mounts a tmpfs of size (e.g. "256m") on a new directory and
// unmounts it at the end of the test (after the cleanups registered later,
// e.g. closing a store on it).
func mountTmpfs(t *testing.T, size string, readOnly bool) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs as the data file system (run the tests as root, e.g. sudo build/test.sh)")
	}
	dir := t.TempDir()
	flags := uintptr(0)
	if readOnly {
		flags = syscall.MS_RDONLY
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", flags, "size="+size); err != nil {
		t.Fatalf("mount a %s tmpfs on %s: %v", size, dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fill allocates a file on dir's file system so that about left bytes stay
// free, and returns its path.
func fill(t *testing.T, dir string, left uint64) string {
	t.Helper()
	fs, err := statfsInfo(dir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Fallocate(int(f.Fd()), 0, 0, int64(fs.free-left)); err != nil {
		t.Fatalf("fallocate %d bytes: %v", fs.free-left, err)
	}
	return path
}

// On a real, small file system, Health turns unavailable when the free
// space drops below the reserve Commit keeps, says so with the numbers,
// agrees with Commit, and recovers when space is freed (issue 13).
func TestHealthFileSystemFull(t *testing.T) {
	dir := mountTmpfs(t, "256m", false)
	db, err := Open(filepath.Join(dir, "data"), Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx := context.Background()
	batch := &appliance.Batch{Sessions: []appliance.SessionRecord{{Key: appliance.SessionKey{DB: "d", ID: 1}, OrderID: 1}}}
	if err := db.Health(); err != nil {
		t.Fatalf("Health() on an empty file system = %v, want nil", err)
	}

	filler := fill(t, dir, db.reserve-16<<20)
	err = db.Health()
	if appliance.ErrorCode(err) != appliance.EUNAVAILABLE || !strings.Contains(err.Error(), "data file system full (") ||
		!strings.Contains(err.Error(), "MiB free of 256 MiB") {
		t.Errorf("Health() with %d MiB free = %v, want EUNAVAILABLE data file system full (… free of 256 MiB …)", (db.reserve-16<<20)>>20, err)
	}
	if err := db.Commit(ctx, batch); appliance.ErrorCode(err) != appliance.EUNAVAILABLE {
		t.Errorf("Commit() while Health reports full = %v, want EUNAVAILABLE", err)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := db.Health(); err != nil {
		t.Errorf("Health() after freeing space = %v, want nil", err)
	}
	if err := db.Commit(ctx, batch); err != nil {
		t.Errorf("Commit() after freeing space = %v", err)
	}
}

// A read-only mount is seen as read-only; Health names it.
func TestHealthReadOnly(t *testing.T) {
	ro := mountTmpfs(t, "1m", true)
	rw := mountTmpfs(t, "1m", false)
	if fs, err := statfsInfo(ro); err != nil || !fs.readOnly {
		t.Errorf("statfsInfo(read-only tmpfs) = %+v, %v; want readOnly", fs, err)
	}
	if fs, err := statfsInfo(rw); err != nil || fs.readOnly {
		t.Errorf("statfsInfo(read-write tmpfs) = %+v, %v; want not readOnly", fs, err)
	}

	// Badger cannot open on a read-only file system, so the store is
	// opened first and its file system measured as the read-only one (a
	// remount would fail while Badger holds files open for writing).
	db, err := Open(t.TempDir(), Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.fsInfo = func(string) (fsInfo, error) { return statfsInfo(ro) }
	if err := db.Health(); appliance.ErrorCode(err) != appliance.EUNAVAILABLE || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("Health() on a read-only file system = %v, want EUNAVAILABLE read-only", err)
	}
	db.fsInfo = func(string) (fsInfo, error) { return fsInfo{}, errors.New("statfs: not supported") }
	if err := db.Health(); err != nil {
		t.Errorf("Health() when the file system cannot be measured = %v, want nil", err)
	}
	db.Close()
	if err := db.Health(); appliance.ErrorCode(err) != appliance.EUNAVAILABLE || !errors.Is(err, appliance.ErrClosed) {
		t.Errorf("Health() after Close = %v, want EUNAVAILABLE wrapping ErrClosed", err)
	}
}
