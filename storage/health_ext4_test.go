package storage

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"possync/appliance"
)

// ext4Card loop-mounts a fresh 64 MiB ext4 image with errors=remount-ro,
// as Debian and Raspberry Pi OS mount the data partition, and returns the
// mount point and a function that makes ext4 hit an error (as a failing
// SD card does), after which it refuses every write.
func ext4Card(t *testing.T) (mnt string, fail func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to loop-mount an ext4 image (run the tests as root, e.g. sudo build/test.sh)")
	}
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		t.Skip("mkfs.ext4 (e2fsprogs) is not installed")
	}
	tmp := t.TempDir()
	img := filepath.Join(tmp, "sd.img")
	mnt = filepath.Join(tmp, "mnt")
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	run("truncate", "-s", "64M", img)
	run("mkfs.ext4", "-q", "-F", img)
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	run("mount", "-o", "loop,errors=remount-ro", img, mnt)
	t.Cleanup(func() { unmount(t, mnt) })
	trigger := filepath.Join("/sys/fs/ext4", filepath.Base(run("findmnt", "-n", "-o", "SOURCE", mnt)), "trigger_fs_error")
	if _, err := os.Stat(trigger); err != nil {
		t.Skipf("cannot make ext4 fail on purpose: %v", err)
	}
	return mnt, func() {
		t.Helper()
		if err := os.WriteFile(trigger, []byte("1\n"), 0o200); err != nil {
			t.Fatalf("write %s: %v", trigger, err)
		}
		if err := os.WriteFile(filepath.Join(mnt, "probe"), nil, 0o600); err == nil {
			t.Fatal("the file system still takes writes after the ext4 error")
		}
	}
}

// unmount unmounts mnt. A store closed on a failed file system may keep
// files open (Badger gives up without closing them), and a closed one may
// release its files a moment later: retry, then detach lazily.
func unmount(t *testing.T, mnt string) {
	t.Helper()
	for range 20 {
		if exec.Command("umount", mnt).Run() == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out, err := exec.Command("umount", "-l", mnt).CombinedOutput(); err != nil {
		t.Errorf("umount -l %s: %v\n%s", mnt, err, out)
	}
}

// closeWithin closes db and fails the test if Close takes longer than d.
func closeWithin(t *testing.T, db *DB, d time.Duration) error {
	t.Helper()
	closed := make(chan error, 1)
	go func() { closed <- db.Close() }()
	select {
	case err := <-closed:
		return err
	case <-time.After(d):
		t.Fatalf("Close on the read-only file system did not return within %v", d)
		return nil
	}
}

// An SD card that reports an error makes ext4 (errors=remount-ro) refuse
// every write from then on. Newer kernels do it as "emergency_ro": the
// mount keeps its rw flag, statfs says writable and access(W_OK) succeeds,
// yet every open for writing fails with EROFS. Health must still say
// read-only (issue 13, "Also seen").
func TestHealthExt4ErrorsRemountReadOnly(t *testing.T) {
	mnt, fail := ext4Card(t)
	dir := filepath.Join(mnt, "data")
	opts := Options{Logger: slog.New(slog.DiscardHandler), ReserveBytes: 1 << 20}
	db, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Health(); err != nil {
		t.Fatalf("Health() before the error = %v, want nil", err)
	}
	fail()
	err = db.Health()
	if appliance.ErrorCode(err) != appliance.EUNAVAILABLE || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("Health() after ext4 remounted the data file system read-only = %v, want EUNAVAILABLE read-only", err)
	}
	_ = closeWithin(t, db, 15*time.Second)
}

// Closing a store whose file system turned read-only with writes still
// in the memtable: Badger retries the flush for ever, so `serve` never
// exited on SIGTERM (systemd killed it after TimeoutStopSec). Close gives
// up after a bounded wait and says why; the acknowledged writes are in the
// synced write-ahead log, which the next open replays.
func TestCloseOnReadOnlyFileSystemReturns(t *testing.T) {
	mnt, fail := ext4Card(t)
	db, err := Open(filepath.Join(mnt, "data"), Options{Logger: slog.New(slog.DiscardHandler), ReserveBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	batch := &appliance.Batch{Sessions: []appliance.SessionRecord{{Key: appliance.SessionKey{DB: "d", ID: 1}, OrderID: 1}}}
	if err := db.Commit(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	fail()
	t0 := time.Now()
	err = closeWithin(t, db, 30*time.Second)
	t.Logf("timing: Close on the read-only file system returned after %v: %v", time.Since(t0).Round(time.Millisecond), err)
	if err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("Close() = %v, want an error saying the file system is read-only", err)
	}

	// The card after a reboot: a copy of the image as it is now (the
	// failed store's goroutines still hold the original) opens with the
	// acknowledged write.
	img := filepath.Join(filepath.Dir(mnt), "sd.img")
	again := filepath.Join(t.TempDir(), "again.img")
	if out, err := exec.Command("cp", "--sparse=always", img, again).CombinedOutput(); err != nil {
		t.Fatalf("copy the image: %v\n%s", err, out)
	}
	mnt2 := filepath.Join(filepath.Dir(again), "mnt")
	if err := os.Mkdir(mnt2, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-o", "loop", again, mnt2).CombinedOutput(); err != nil {
		t.Fatalf("mount the copy: %v\n%s", err, out)
	}
	defer unmount(t, mnt2)
	db2, err := Open(filepath.Join(mnt2, "data"), Options{Logger: slog.New(slog.DiscardHandler), ReserveBytes: 1 << 20})
	if err != nil {
		t.Fatalf("open the store after the reboot: %v", err)
	}
	defer db2.Close()
	snap, err := db2.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Sessions) != 1 || snap.Sessions[0].Key != batch.Sessions[0].Key {
		t.Errorf("sessions after the reboot = %+v, want the acknowledged one", snap.Sessions)
	}
}
