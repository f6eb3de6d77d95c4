package storage

import (
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"possync/appliance"
)

// An SD card that reports an error makes ext4 (mounted errors=remount-ro,
// as Debian and Raspberry Pi OS do) refuse every write from then on. Newer
// kernels do it as "emergency_ro": the mount keeps its rw flag, statfs says
// writable and access(W_OK) succeeds, yet every open for writing fails with
// EROFS. Health must still say read-only (issue 13, "Also seen").
func TestHealthExt4ErrorsRemountReadOnly(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to loop-mount an ext4 image (run the tests as root, e.g. sudo build/test.sh)")
	}
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		t.Skip("mkfs.ext4 (e2fsprogs) is not installed")
	}
	tmp := t.TempDir()
	img, mnt := filepath.Join(tmp, "sd.img"), filepath.Join(tmp, "mnt")
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
	t.Cleanup(func() {
		// The closed store's files may take a moment to be released.
		for range 50 {
			if exec.Command("umount", mnt).Run() == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		if out, err := exec.Command("umount", "-l", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount -l %s: %v\n%s", mnt, err, out)
		}
	})
	dev := filepath.Base(run("findmnt", "-n", "-o", "SOURCE", mnt))
	trigger := filepath.Join("/sys/fs/ext4", dev, "trigger_fs_error")
	if _, err := os.Stat(trigger); err != nil {
		t.Skipf("cannot make ext4 fail on purpose: %v", err)
	}

	dir := filepath.Join(mnt, "data")
	opts := Options{Logger: slog.New(slog.DiscardHandler), ReserveBytes: 1 << 20}
	// Open, write and close once, so the store opened below has nothing
	// to flush: Badger retries a failing flush for ever on Close.
	db, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if db, err = Open(dir, opts); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	t.Cleanup(func() {
		go func() { closed <- db.Close() }()
		select {
		case err := <-closed:
			if err != nil {
				t.Logf("Close on the read-only file system: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Close on the read-only file system did not return within 10s")
		}
	})
	if err := db.Health(); err != nil {
		t.Fatalf("Health() before the error = %v, want nil", err)
	}
	if err := os.WriteFile(trigger, []byte("1\n"), 0o200); err != nil {
		t.Fatalf("write %s: %v", trigger, err)
	}
	if err := os.WriteFile(filepath.Join(mnt, "probe"), nil, 0o600); err == nil {
		t.Fatal("the file system still takes writes after the ext4 error")
	}
	err = db.Health()
	if appliance.ErrorCode(err) != appliance.EUNAVAILABLE || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("Health() after ext4 remounted the data file system read-only = %v, want EUNAVAILABLE read-only", err)
	}
}
