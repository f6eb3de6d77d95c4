package update_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"possync/appliance/update"
	"possync/appliance/update/updatetest"
)

// incoming/ belongs to the possync user; install-pending runs as root. A
// symlink there (possync compromised) must not make root install, chown
// or chmod what it points to: it is not pending, and install-bundle
// refuses it without touching the target.
func TestInstallIgnoresSymlinks(t *testing.T) {
	fake := updatetest.NewFakeRauc(t, "A", "")
	in := newInstaller(t, fake)
	elsewhere := t.TempDir()
	target := updatetest.Bundle(t, elsewhere, updatetest.Good, "2.0.0", 20_000)
	if err := os.Chmod(target, 0o600); err != nil {
		t.Fatal(err)
	}
	incoming := filepath.Join(in.Dir, "incoming")
	os.MkdirAll(incoming, 0o750)
	link := filepath.Join(incoming, "possync-2.0.0.raucb")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if got := update.PendingIn(incoming); len(got) != 0 {
		t.Errorf("PendingIn lists a symlink: %v", got)
	}
	out, err := in.InstallBundle(context.Background(), link, update.SourceUpload)
	if err == nil || out.Installed {
		t.Fatalf("InstallBundle(symlink) = %+v, %v; want an error", out, err)
	}
	t.Log(err)
	if len(fake.Calls()) != 0 {
		t.Errorf("rauc called: %v", fake.Calls())
	}
	fi, err := os.Stat(target)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("target changed: %v %v", fi.Mode(), err)
	}
	if st := fi.Sys().(*syscall.Stat_t); os.Geteuid() == 0 && st.Uid != uint32(os.Geteuid()) {
		t.Errorf("target owner changed to %d", st.Uid)
	}
}

// possync-update.path starts install-pending while any *.raucb exists
// (PathExistsGlob): an entry install-pending skips, such as a symlink or a
// directory of that name, would make systemd start it again at once, for
// ever. Such entries are renamed NAME.refused (the link itself, never its
// target) and logged.
func TestInstallPendingMovesOddEntriesAside(t *testing.T) {
	fake := updatetest.NewFakeRauc(t, "A", "")
	in := newInstaller(t, fake)
	incoming := filepath.Join(in.Dir, "incoming")
	os.MkdirAll(filepath.Join(incoming, "dir.raucb"), 0o750)
	target := filepath.Join(t.TempDir(), "target")
	os.WriteFile(target, []byte("x"), 0o600)
	os.Symlink(target, filepath.Join(incoming, "link.raucb"))
	out, err := in.InstallPending(context.Background(), []update.Source{{Dir: incoming, Kind: update.SourceUpload}})
	if out.Installed {
		t.Fatalf("installed %+v", out)
	}
	t.Log(err)
	if left, _ := filepath.Glob(filepath.Join(incoming, "*.raucb")); len(left) != 0 {
		t.Fatalf("still matching possync-update.path: %v", left)
	}
	if b, err := os.ReadFile(target); err != nil || string(b) != "x" {
		t.Fatalf("link target touched: %q %v", b, err)
	}
	// Not recorded: a record without a slot as the newest attempt would
	// hide an update on trial from onTrial and boot-check.
	if got := results(t, in.Dir); len(got) != 0 {
		t.Errorf("attempts %v, want none", got)
	}
}

// Between an install and the reboot into it nothing more is done: a
// record written then (a refusal) would become the newest attempt and
// hide the update from boot-check at the next boot (no trial: no
// mark-bad and no way back if the new release is unhealthy).
func TestInstallWaitsForReboot(t *testing.T) {
	fake := updatetest.NewFakeRauc(t, "A", "")
	in := newInstaller(t, fake)
	update.AppendAttempt(in.Dir, update.Attempt{Version: "2.0.0", Slot: "B", FromSlot: "A", Result: update.ResultInstalled})
	inc := filepath.Join(in.Dir, "incoming")
	os.MkdirAll(inc, 0o750)
	bad := updatetest.Bundle(t, inc, updatetest.OtherCA, "3.0.0", 20_000)
	_, err := in.InstallPending(context.Background(), []update.Source{{Dir: inc, Kind: update.SourceUpload}})
	if !errors.Is(err, update.ErrRebootPending) {
		t.Fatalf("InstallPending = %v, want ErrRebootPending", err)
	}
	if _, err := os.Stat(bad); err != nil {
		t.Fatalf("bundle moved: %v", err)
	}
	if got := results(t, in.Dir); len(got) != 1 {
		t.Fatalf("attempts %v, want only the install", got)
	}
}
