package updatetest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// FakeRauc stands in for the rauc of an A/B box in tests on a machine
// without one: `rauc info` runs the real rauc (bundle checks are real),
// while `rauc status` prints Dir/status.json, `rauc install` and
// `rauc status mark-*` are recorded in Dir/calls (one line each) and fail
// with rauc's words when Dir/install.fail or Dir/mark.fail holds a reason.
// The real install runs in the QEMU update test.
type FakeRauc struct {
	Dir  string
	Path string // the program to use as update.rauc
}

// NewFakeRauc writes the stand-in into a new temporary directory, with
// the box booted from slot booted and the other slot holding otherVersion
// ("" = never installed).
func NewFakeRauc(tb testing.TB, booted, otherVersion string) *FakeRauc {
	tb.Helper()
	NeedRauc(tb)
	real, _ := exec.LookPath("rauc")
	f := &FakeRauc{Dir: tb.TempDir()}
	f.Path = filepath.Join(f.Dir, "rauc")
	script := fmt.Sprintf(`#!/bin/sh
d=%q
case "$1" in
info) exec %q "$@" ;;
install)
	echo "install $2" >>"$d/calls"
	if [ -s "$d/install.fail" ]; then echo "100%% Installing failed."; echo "LastError: $(cat "$d/install.fail")"; exit 1; fi
	echo "100%% Installing done."; exit 0 ;;
status)
	case "$2" in
	mark-good|mark-bad)
		echo "$2 $3" >>"$d/calls"
		if [ -s "$d/mark.fail" ]; then cat "$d/mark.fail" >&2; exit 1; fi
		echo "marked slot rootfs.0 as $2"; exit 0 ;;
	esac
	cat "$d/status.json"; exit 0 ;;
esac
echo "fake rauc: unknown command $*" >&2; exit 2
`, f.Dir, real)
	if err := os.WriteFile(f.Path, []byte(script), 0o755); err != nil {
		tb.Fatal(err)
	}
	f.SetStatus(tb, booted, otherVersion)
	return f
}

// SetStatus writes the status rauc 1.8 prints for a box booted from
// booted (its format, recorded from `rauc status --detailed
// --output-format=json` with build/update/system.conf; slot_status is
// present for a slot rauc installed).
func (f *FakeRauc) SetStatus(tb testing.TB, booted, otherVersion string) {
	tb.Helper()
	other := map[string]string{"A": "B", "B": "A"}[booted]
	slot := func(name, boot, state string, version string) string {
		s := fmt.Sprintf(`{%q:{"class":"rootfs","device":"/dev/disk/by-partuuid/50535943-0%s","type":"ext4","bootname":%q,"state":%q,"parent":null,"mountpoint":null,"boot_status":"good"`,
			name, map[string]string{"A": "2", "B": "3"}[boot], boot, state)
		if version != "" {
			s += fmt.Sprintf(`,"slot_status":{"bundle":{"compatible":"possync-arm64","version":%q,"description":null,"build":null,"hash":"0f0f"},"checksum":{"sha256":"ab","size":1},"installed":{"timestamp":"2026-12-01T10:00:00Z","count":1},"activated":{"timestamp":"2026-12-01T10:00:01Z","count":1},"status":"ok"}`, version)
		}
		return s + "}}"
	}
	name := map[string]string{"A": "rootfs.0", "B": "rootfs.1"}
	js := fmt.Sprintf(`{"compatible":"possync-arm64","variant":"","booted":%q,"boot_primary":%q,"slots":[%s,%s]}`,
		booted, name[booted], slot(name[other], other, "inactive", otherVersion), slot(name[booted], booted, "booted", ""))
	if err := os.WriteFile(filepath.Join(f.Dir, "status.json"), []byte(js), 0o644); err != nil {
		tb.Fatal(err)
	}
}

// Calls returns the recorded install and mark calls.
func (f *FakeRauc) Calls() []string {
	data, _ := os.ReadFile(filepath.Join(f.Dir, "calls"))
	return strings.FieldsFunc(string(data), func(r rune) bool { return r == '\n' })
}

// Fail makes the next installs (what = "install") or marks ("mark") fail
// with reason; "" makes them succeed again.
func (f *FakeRauc) Fail(tb testing.TB, what, reason string) {
	tb.Helper()
	if err := os.WriteFile(filepath.Join(f.Dir, what+".fail"), []byte(reason), 0o644); err != nil {
		tb.Fatal(err)
	}
}
