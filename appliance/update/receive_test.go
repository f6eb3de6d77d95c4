package update_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"possync/appliance/update"
	"possync/appliance/update/updatetest"
)

func newReceiver(t *testing.T, dir string) *update.Receiver {
	return &update.Receiver{Dir: dir, MaxBytes: 64 << 20, Rauc: update.Rauc{Keyring: updatetest.Keyring()}, Running: "1.0.0"}
}

// incoming lists dir/incoming.
func incoming(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "incoming"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func kindOf(err error) string {
	var re *update.ReceiveError
	if errors.As(err, &re) {
		return re.Kind
	}
	return "not a ReceiveError: " + errString(err)
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

func TestReceiveGoodBundle(t *testing.T) {
	bundles, dir := t.TempDir(), t.TempDir()
	good := updatetest.Bundle(t, bundles, updatetest.Good, "2.0.0+test", 300_000)
	data, _ := os.ReadFile(good)
	rc := newReceiver(t, dir)
	got, err := rc.Receive(context.Background(), bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != "2.0.0+test" || got.Bytes != int64(len(data)) || got.File != filepath.Join(dir, "incoming", "possync-2.0.0+test.raucb") {
		t.Fatalf("received %+v", got)
	}
	if !strings.Contains(got.Next, "comes back on 1.0.0") {
		t.Errorf("next step: %s", got.Next)
	}
	if names := incoming(t, dir); len(names) != 1 || names[0] != "possync-2.0.0+test.raucb" {
		t.Fatalf("incoming = %v", names)
	}
	kept, _ := os.ReadFile(got.File)
	if !bytes.Equal(kept, data) {
		t.Fatal("kept bundle differs from the upload")
	}
}

// Bad bundles, too large, short and broken uploads leave nothing behind.
func TestReceiveRefusals(t *testing.T) {
	bundles := t.TempDir()
	good, _ := os.ReadFile(updatetest.Bundle(t, bundles, updatetest.Good, "2.0.0", 100_000))
	for _, tc := range []struct {
		name string
		body func() io.Reader
		size int64
		max  int64
		kind string
		msg  string
	}{
		{"unsigned", func() io.Reader { return open(t, updatetest.Bundle(t, bundles, updatetest.Unsigned, "2.0.0", 100_000)) }, -1, 0, update.KindRefused, "Signature size is 0"},
		{"other CA", func() io.Reader { return open(t, updatetest.Bundle(t, bundles, updatetest.OtherCA, "2.0.0", 100_000)) }, -1, 0, update.KindRefused, "signature verification failed"},
		{"wrong compatible", func() io.Reader {
			return open(t, updatetest.Bundle(t, bundles, updatetest.WrongCompat, "2.0.0", 100_000))
		}, -1, 0, update.KindRefused, "possync-armhf"},
		{"truncated", func() io.Reader { return bytes.NewReader(good[:len(good)-4096]) }, -1, 0, update.KindRefused, "Invalid bundle format"},
		{"declared too large", func() io.Reader { return bytes.NewReader(good) }, 65 << 20, 0, update.KindTooLarge, "64 MiB (admin.max_bundle_mib)"},
		{"streamed too large", func() io.Reader { return bytes.NewReader(good) }, -1, 32 << 10, update.KindTooLarge, "admin.max_bundle_mib"},
		{"short", func() io.Reader { return bytes.NewReader(good[:1000]) }, int64(len(good)), 0, update.KindShort, "ended after 1000 of"},
		{"broken", func() io.Reader { return io.MultiReader(bytes.NewReader(good[:5000]), errReader{}) }, -1, 0, update.KindShort, "broke off after 5000 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			rc := newReceiver(t, dir)
			if tc.max > 0 {
				rc.MaxBytes = tc.max
			}
			_, err := rc.Receive(context.Background(), tc.body(), tc.size)
			if kindOf(err) != tc.kind || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Receive = %s / %v, want %s containing %q", kindOf(err), err, tc.kind, tc.msg)
			}
			if names := incoming(t, dir); len(names) != 0 {
				t.Fatalf("left behind: %v", names)
			}
			t.Logf("%s: %v", tc.kind, err)
		})
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset by peer") }

func open(t *testing.T, path string) io.Reader {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(data)
}

// The data partition is shared with the store: an upload that would leave
// less than KeepFreeBytes is refused, before writing when its size is
// known and while it arrives otherwise.
func TestReceiveKeepsSpaceFree(t *testing.T) {
	updatetest.NeedRauc(t)
	dir := t.TempDir()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	free := st.Bavail * uint64(st.Bsize)
	rc := newReceiver(t, dir)
	rc.KeepFreeBytes = free - 1<<20 // about 1 MiB may be used
	_, err := rc.Receive(context.Background(), bytes.NewReader(make([]byte, 8<<20)), 8<<20)
	if kindOf(err) != update.KindDiskFull || !strings.Contains(err.Error(), "kept free for the store") {
		t.Fatalf("declared size: %v", err)
	}
	_, err = rc.Receive(context.Background(), bytes.NewReader(make([]byte, 12<<20)), -1)
	if kindOf(err) != update.KindDiskFull {
		t.Fatalf("streamed: %v", err)
	}
	if names := incoming(t, dir); len(names) != 0 {
		t.Fatalf("left behind: %v", names)
	}
}

// A real full file system (a 16 MiB tmpfs; root only): ENOSPC mid-upload
// is a disk-full refusal and the part file is gone.
func TestReceiveENOSPC(t *testing.T) {
	updatetest.NeedRauc(t)
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED, NOT RUN: needs root to mount a 16 MiB tmpfs")
	}
	mnt := t.TempDir()
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=16m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(mnt, 0) })
	rc := newReceiver(t, mnt)
	_, err := rc.Receive(context.Background(), bytes.NewReader(make([]byte, 20<<20)), -1)
	if kindOf(err) != update.KindDiskFull {
		t.Fatalf("Receive = %v, want disk full", err)
	}
	if names := incoming(t, mnt); len(names) != 0 {
		t.Fatalf("left behind: %v", names)
	}
	t.Log(err)
}

// One upload at a time: a second one while the first is arriving is
// refused as busy.
func TestReceiveOneAtATime(t *testing.T) {
	updatetest.NeedRauc(t)
	dir := t.TempDir()
	rc := newReceiver(t, dir)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := rc.Receive(context.Background(), pr, -1)
		done <- err
	}()
	if _, err := pw.Write([]byte("first bytes")); err != nil {
		t.Fatal(err)
	}
	_, err := rc.Receive(context.Background(), strings.NewReader("x"), 1)
	if kindOf(err) != update.KindBusy {
		t.Fatalf("second upload: %v", err)
	}
	pw.Close()
	select {
	case err := <-done:
		if kindOf(err) != update.KindRefused {
			t.Fatalf("first upload (not a bundle): %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("first upload did not end")
	}
}
