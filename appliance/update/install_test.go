package update_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"possync/appliance/update"
	"possync/appliance/update/updatetest"
)

func newInstaller(t *testing.T, fake *updatetest.FakeRauc) *update.Installer {
	return &update.Installer{Dir: t.TempDir(), Rauc: update.Rauc{Path: fake.Path, Keyring: updatetest.Keyring()}, Running: "1.0.0", Reboot: []string{"true"}}
}

func results(t *testing.T, dir string) []string {
	t.Helper()
	as, err := update.ReadAttempts(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range as {
		out = append(out, a.Slot+":"+a.Version+":"+a.Result)
	}
	return out
}

// A good bundle on the FAT partition: verified, installed into the other
// slot, renamed FILE.installed, recorded installing → installed, and
// slots.json written. The same file is never installed twice.
func TestInstallBundle(t *testing.T) {
	fake := updatetest.NewFakeRauc(t, "A", "")
	in := newInstaller(t, fake)
	fat := t.TempDir()
	b := updatetest.Bundle(t, fat, updatetest.Good, "2.0.0", 50_000)
	out, err := in.InstallBundle(context.Background(), b, update.SourceFAT)
	if err != nil {
		t.Fatal(err)
	}
	if !out.Installed || out.Slot != "B" || out.Version != "2.0.0" || out.Renamed != b+".installed" {
		t.Fatalf("outcome %+v", out)
	}
	if _, err := os.Stat(b); !os.IsNotExist(err) {
		t.Fatalf("bundle still at its name: %v", err)
	}
	if got := fake.Calls(); !slices.Equal(got, []string{"install " + b + ".installing"}) {
		t.Fatalf("rauc calls %q", got)
	}
	if got := results(t, in.Dir); !slices.Equal(got, []string{"B:2.0.0:installing", "B:2.0.0:installed"}) {
		t.Fatalf("attempts %q", got)
	}
	as, _ := update.ReadAttempts(in.Dir)
	if a := as[1]; a.FromVersion != "1.0.0" || a.FromSlot != "A" || a.Source != "fat" || a.Bundle != filepath.Base(b) {
		t.Fatalf("attempt %+v", a)
	}
	slots, err := update.ReadSlots(in.Dir)
	if err != nil || slots.Booted != "A" || len(slots.Slots) != 2 || slots.Slots[0].Version != "1.0.0" {
		t.Fatalf("slots.json %+v, %v", slots, err)
	}
	// install-pending finds nothing more to do.
	out, err = in.InstallPending(context.Background(), []update.Source{{Dir: fat, Kind: update.SourceFAT}})
	if err != nil || out.Installed {
		t.Fatalf("second run: %+v, %v", out, err)
	}
}

// Bad bundles are refused with rauc's reason, renamed FILE.refused and
// recorded; rauc install is never called. A bundle rauc install refuses
// (what dm-verity does with a damaged payload) is refused the same way.
func TestInstallRefused(t *testing.T) {
	fake := updatetest.NewFakeRauc(t, "B", "1.0.0")
	in := newInstaller(t, fake)
	usb := t.TempDir()
	unsigned := updatetest.Bundle(t, usb, updatetest.Unsigned, "2.0.0", 50_000)
	_, err := in.InstallBundle(context.Background(), unsigned, update.SourceUSB)
	var re *update.RefusedError
	if !errors.As(err, &re) || !strings.Contains(re.Reason, "Signature size is 0") {
		t.Fatalf("unsigned: %v", err)
	}
	if _, err := os.Stat(unsigned + ".refused"); err != nil {
		t.Fatal(err)
	}
	fake.Fail(t, "install", "Failed mounting bundle: dm-verity: data block 12 is corrupted")
	good := updatetest.Bundle(t, usb, updatetest.Good, "2.0.1", 50_000)
	out, err := in.InstallBundle(context.Background(), good, update.SourceUSB)
	if !errors.As(err, &re) || !strings.Contains(re.Reason, "data block 12 is corrupted") || out.Renamed != good+".refused" {
		t.Fatalf("install refused: %+v, %v", out, err)
	}
	if got := results(t, in.Dir); !slices.Equal(got, []string{"A::refused", "A:2.0.1:installing", "A:2.0.1:refused"}) {
		t.Fatalf("attempts %q", got)
	}
	if ents, _ := filepath.Glob(filepath.Join(usb, "*.raucb")); len(ents) != 0 {
		t.Fatalf("bundles left to install again: %v", ents)
	}
}

// While the booted slot is on trial (installed by an update, not yet
// marked good) nothing is installed: that would overwrite the only slot
// known to work. The file stays for the next run.
func TestInstallWaitsForTrial(t *testing.T) {
	fake := updatetest.NewFakeRauc(t, "B", "1.0.0")
	in := newInstaller(t, fake)
	if err := update.AppendAttempt(in.Dir, update.Attempt{Version: "1.0.0", Slot: "B", Result: update.ResultInstalled}); err != nil {
		t.Fatal(err)
	}
	inc := filepath.Join(in.Dir, "incoming")
	os.MkdirAll(inc, 0o750)
	b := updatetest.Bundle(t, inc, updatetest.Good, "3.0.0", 50_000)
	_, err := in.InstallPending(context.Background(), []update.Source{{Dir: inc, Kind: update.SourceUpload}})
	if !errors.Is(err, update.ErrOnTrial) {
		t.Fatalf("InstallPending = %v, want ErrOnTrial", err)
	}
	if _, err := os.Stat(b); err != nil {
		t.Fatalf("bundle moved: %v", err)
	}
	if len(fake.Calls()) != 0 {
		t.Fatalf("rauc called: %q", fake.Calls())
	}
	// Marked bad but the reboot did not happen: still no install.
	update.AppendAttempt(in.Dir, update.Attempt{Version: "1.0.0", Slot: "B", Result: update.ResultFailed})
	if _, err := in.InstallPending(context.Background(), []update.Source{{Dir: inc, Kind: update.SourceUpload}}); !errors.Is(err, update.ErrOnTrial) {
		t.Fatalf("after a failed trial: %v, want ErrOnTrial", err)
	}
	// Marked good: the bundle goes in.
	update.AppendAttempt(in.Dir, update.Attempt{Version: "1.0.0", Slot: "B", Result: update.ResultGood})
	if out, err := in.InstallPending(context.Background(), []update.Source{{Dir: inc, Kind: update.SourceUpload}}); err != nil || !out.Installed || out.Renamed != "" {
		t.Fatalf("after mark-good: %+v %v", out, err)
	}
	// A consumed upload is deleted: it would take the store's space.
	if ents, _ := os.ReadDir(inc); len(ents) != 0 {
		t.Fatalf("incoming after the install: %v", ents)
	}
}

// healthServer answers /healthz like possync: ok after okAfter requests.
func healthServer(t *testing.T, okAfter int, committed bool) *httptest.Server {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("write") != "1" {
			t.Errorf("health check without write=1: %s", r.URL)
		}
		if int(n.Add(1)) <= okAfter {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"status":"degraded","detail":"data file system is full"}`)
			return
		}
		fmt.Fprintf(w, `{"status":"ok","detail":"","write_committed":%v}`, committed)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// boot-check on a trial boot: healthy after a few tries → mark-good and
// "good"; never healthy → "failed" with the reason, mark-bad, reboot; the
// box back on the old slot records "rolled-back".
func TestBootCheckTrial(t *testing.T) {
	fake := updatetest.NewFakeRauc(t, "B", "1.0.0")
	in := newInstaller(t, fake)
	in.Running = "2.0.0"
	update.AppendAttempt(in.Dir, update.Attempt{Version: "2.0.0", Slot: "B", FromVersion: "1.0.0", FromSlot: "A", Result: update.ResultInstalled})
	bc := &update.BootCheck{Installer: in, HealthURL: healthServer(t, 2, true).URL + "/healthz?write=1", Within: 10 * time.Second, Interval: 10 * time.Millisecond}
	res, err := bc.Run(context.Background())
	if err != nil || !res.Good || !res.Trial || res.Reboot {
		t.Fatalf("Run = %+v, %v", res, err)
	}
	if got := results(t, in.Dir); !slices.Equal(got, []string{"B:2.0.0:installed", "B:2.0.0:booting", "B:2.0.0:good"}) {
		t.Fatalf("attempts %q", got)
	}
	if got := fake.Calls(); !slices.Equal(got, []string{"mark-good booted"}) {
		t.Fatalf("rauc calls %q", got)
	}

	// The next release never becomes healthy.
	update.AppendAttempt(in.Dir, update.Attempt{Version: "3.0.0", Slot: "A", FromVersion: "2.0.0", FromSlot: "B", Result: update.ResultInstalled})
	fake.SetStatus(t, "A", "2.0.0")
	in.Running = "3.0.0"
	bc.HealthURL = healthServer(t, 1<<30, true).URL + "/healthz?write=1"
	bc.Within = 300 * time.Millisecond
	res, err = bc.Run(context.Background())
	if err != nil || res.Good || !res.Reboot || !strings.Contains(res.Reason, "data file system is full") {
		t.Fatalf("Run = %+v, %v", res, err)
	}
	as, _ := update.ReadAttempts(in.Dir)
	if a := as[len(as)-1]; a.Result != update.ResultFailed || a.Slot != "A" || !strings.Contains(a.Reason, "not healthy within 300ms") {
		t.Fatalf("last attempt %+v", a)
	}
	if got := fake.Calls(); got[len(got)-1] != "mark-bad booted" {
		t.Fatalf("rauc calls %q", got)
	}

	// U-Boot falls back to B: boot-check there records the rollback and
	// marks B good (an ordinary boot: no "booting" record).
	fake.SetStatus(t, "B", "3.0.0")
	in.Running = "2.0.0"
	bc.HealthURL = healthServer(t, 0, true).URL + "/healthz?write=1"
	res, err = bc.Run(context.Background())
	if err != nil || !res.Good || res.Trial {
		t.Fatalf("Run after fallback = %+v, %v", res, err)
	}
	as, _ = update.ReadAttempts(in.Dir)
	a := as[len(as)-1]
	if a.Result != update.ResultRolledBack || a.Slot != "A" || a.Version != "3.0.0" || a.FromVersion != "2.0.0" || !strings.Contains(a.Reason, "marked bad") {
		t.Fatalf("last attempt %+v", a)
	}
	st := update.ReadState(in.Dir, "root=PARTUUID=50535943-03 rauc.slot=B")
	if !st.Available || st.Booted != "B" || st.Other == nil || st.Other.Version != "3.0.0" || st.Last == nil || st.Last.Result != "rolled-back" {
		t.Fatalf("state %+v", st)
	}
}

// An install cut by a power loss ("installing" is the newest record) is
// recorded as rolled back at the next boot, and an ordinary boot whose
// possync is unhealthy is neither marked good nor rebooted.
func TestBootCheckInterruptedAndOrdinary(t *testing.T) {
	fake := updatetest.NewFakeRauc(t, "A", "")
	in := newInstaller(t, fake)
	update.AppendAttempt(in.Dir, update.Attempt{Version: "2.0.0", Slot: "B", FromSlot: "A", Result: update.ResultInstalling})
	bc := &update.BootCheck{Installer: in, HealthURL: healthServer(t, 1<<30, true).URL + "/healthz?write=1", Within: 200 * time.Millisecond, Interval: 10 * time.Millisecond}
	res, err := bc.Run(context.Background())
	if err == nil || res.Good || res.Reboot || res.Trial {
		t.Fatalf("Run = %+v, %v", res, err)
	}
	as, _ := update.ReadAttempts(in.Dir)
	if a := as[len(as)-1]; a.Result != update.ResultRolledBack || !strings.Contains(a.Reason, "did not finish") {
		t.Fatalf("last attempt %+v", a)
	}
	if len(fake.Calls()) != 0 {
		t.Fatalf("rauc marked a slot: %q", fake.Calls())
	}
	// A /healthz that commits no write does not count as healthy.
	bc.HealthURL = healthServer(t, 0, false).URL + "/healthz?write=1"
	res, err = bc.Run(context.Background())
	if err == nil || !strings.Contains(res.Reason, "committed no write") {
		t.Fatalf("Run = %+v, %v", res, err)
	}
}

// Without slots.json and rauc.slot= (a laptop), the state says so.
func TestStateWithoutSlots(t *testing.T) {
	st := update.ReadState(t.TempDir(), "BOOT_IMAGE=/vmlinuz root=/dev/sda1")
	if st.Available || !strings.Contains(st.Note, "no A/B slots") {
		t.Fatalf("state %+v", st)
	}
}
