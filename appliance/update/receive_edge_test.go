package update_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"possync/appliance/update"
	"possync/appliance/update/updatetest"
)

// A part file left by a crash (kill -9, power loss) mid-upload holds up to
// admin.max_bundle_mib of the data partition: RemoveParts, run when possync
// starts, deletes it and keeps the bundles waiting.
func TestReceiverRemovesStaleParts(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "incoming")
	if err := os.MkdirAll(in, 0o750); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"upload-1.raucb.part", "possync-2.0.0.raucb"} {
		if err := os.WriteFile(filepath.Join(in, name), []byte("x"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	rc := newReceiver(t, dir)
	if n := rc.RemoveParts(); n != 1 {
		t.Errorf("RemoveParts = %d, want 1", n)
	}
	if names := incoming(t, dir); len(names) != 1 || names[0] != "possync-2.0.0.raucb" {
		t.Fatalf("incoming = %v, want only the waiting bundle", names)
	}
	if n := newReceiver(t, t.TempDir()).RemoveParts(); n != 0 {
		t.Errorf("RemoveParts without incoming/ = %d", n)
	}
}

// An empty body is a short upload that says so, not rauc's "Failed to seek
// to end of bundle".
func TestReceiveEmptyBody(t *testing.T) {
	for _, size := range []int64{0, -1} {
		dir := t.TempDir()
		_, err := newReceiver(t, dir).Receive(context.Background(), bytes.NewReader(nil), size)
		if kindOf(err) != update.KindShort || !strings.Contains(err.Error(), "empty") {
			t.Fatalf("size %d: Receive = %s / %v, want short, empty", size, kindOf(err), err)
		}
		if names := incoming(t, dir); len(names) != 0 {
			t.Fatalf("left behind: %v", names)
		}
	}
}

// A box whose update.keyring is missing, or whose incoming/ cannot be
// used, is the box's fault, not the bundle's: the client's GET ?size=
// check (Fits) says so before hundreds of MiB are sent, and the upload is
// an internal error naming the setting. (The root side still renames such
// a bundle .refused with rauc's "failed to load CA file": a bundle left in
// place would make possync-update.path start the service again at once,
// for ever.)
func TestReceiveBoxMisconfigured(t *testing.T) {
	updatetest.NeedRauc(t)
	bundles := t.TempDir()
	good, _ := os.ReadFile(updatetest.Bundle(t, bundles, updatetest.Good, "2.0.0", 50_000))

	t.Run("keyring missing", func(t *testing.T) {
		dir := t.TempDir()
		rc := newReceiver(t, dir)
		rc.Rauc.Keyring = filepath.Join(dir, "no-such-keyring.pem")
		if err := rc.Fits(int64(len(good))); kindOf(err) != update.KindInternal || !strings.Contains(errString(err), "update.keyring") {
			t.Fatalf("Fits = %s / %v, want internal naming update.keyring", kindOf(err), err)
		}
		_, err := rc.Receive(context.Background(), bytes.NewReader(good), int64(len(good)))
		if kindOf(err) != update.KindInternal || !strings.Contains(errString(err), "update.keyring") {
			t.Fatalf("Receive = %s / %v, want internal naming update.keyring", kindOf(err), err)
		}
		if names := incoming(t, dir); len(names) != 0 {
			t.Fatalf("left behind: %v", names)
		}
	})
	t.Run("incoming is a file", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "incoming"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		rc := newReceiver(t, dir)
		if err := rc.Fits(int64(len(good))); kindOf(err) != update.KindInternal || !strings.Contains(errString(err), "incoming") {
			t.Fatalf("Fits = %s / %v, want internal naming incoming", kindOf(err), err)
		}
	})
}

// On a machine without A/B slots (today's one-root image, a laptop)
// nothing would ever install an upload: it would only fill the data
// partition. Installable says so; Fits and Receive refuse before a byte is
// stored.
func TestReceiveWithoutSlots(t *testing.T) {
	dir := t.TempDir()
	rc := newReceiver(t, dir)
	rc.Installable = func() error { return errors.New("this machine has no A/B slots") }
	if err := rc.Fits(1000); kindOf(err) != update.KindNoSlots || !strings.Contains(errString(err), "no A/B slots") {
		t.Fatalf("Fits = %s / %v", kindOf(err), err)
	}
	_, err := rc.Receive(context.Background(), strings.NewReader("bundle bytes"), 12)
	if kindOf(err) != update.KindNoSlots || !strings.Contains(errString(err), "no A/B slots") {
		t.Fatalf("Receive = %s / %v", kindOf(err), err)
	}
	if names := incoming(t, dir); len(names) != 0 {
		t.Fatalf("left behind: %v", names)
	}
}
