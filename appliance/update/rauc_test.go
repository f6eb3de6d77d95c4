package update_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"possync/appliance/update"
	"possync/appliance/update/updatetest"
)

// The real rauc checks bundles made with the development keys: a good one
// passes with its version; each bad one is a RefusedError with rauc's
// reason (or the compatible check's).
func TestInfoRealRauc(t *testing.T) {
	dir := t.TempDir()
	r := update.Rauc{Keyring: updatetest.Keyring()}
	good := updatetest.Bundle(t, dir, updatetest.Good, "1.2.3", 100_000)
	bi, err := r.Info(context.Background(), good)
	if err != nil {
		t.Fatalf("good bundle: %v", err)
	}
	if bi.Version != "1.2.3" || bi.Compatible != "possync-arm64" {
		t.Fatalf("info = %+v", bi)
	}
	for kind, want := range map[string]string{
		updatetest.OtherCA:       "signature verification failed",
		updatetest.Unsigned:      "Signature size is 0",
		updatetest.Truncated:     "Invalid bundle format: Signature size",
		updatetest.TamperedMfest: "signature verification failed",
		updatetest.WrongCompat:   `bundle is for "possync-armhf", this box takes "possync-arm64"`,
	} {
		t.Run(kind, func(t *testing.T) {
			f := updatetest.Bundle(t, dir, kind, "1.2.3", 100_000)
			_, err := r.Info(context.Background(), f)
			var re *update.RefusedError
			if !errors.As(err, &re) {
				t.Fatalf("Info(%s) = %v, want a RefusedError", kind, err)
			}
			if !strings.Contains(re.Reason, want) {
				t.Fatalf("reason %q does not contain %q", re.Reason, want)
			}
			t.Logf("%s: %s", kind, re.Reason)
		})
	}
}

// rauc 1.8's own status output (recorded with build/update/system.conf on
// a private D-Bus, booted A, B never installed) and a detailed one with an
// installed B.
func TestParseRaucStatus(t *testing.T) {
	recorded := `{"compatible":"possync-arm64","variant":"","booted":"A","boot_primary":"rootfs.0","slots":[{"rootfs.1":{"class":"rootfs","device":"/tmp/rs/b.img","type":"ext4","bootname":"B","state":"inactive","parent":null,"mountpoint":null,"boot_status":"bad"}},{"rootfs.0":{"class":"rootfs","device":"/tmp/rs/a.img","type":"ext4","bootname":"A","state":"booted","parent":null,"mountpoint":null,"boot_status":"good"}}]}`
	st, err := update.ParseRaucStatus([]byte(recorded))
	if err != nil {
		t.Fatal(err)
	}
	if st.Booted != "A" || st.Other("A") != "B" || len(st.Slots) != 2 || st.Slots[0].Name != "rootfs.0" || !st.Slots[0].Primary || st.Slots[1].BootStatus != "bad" {
		t.Fatalf("parsed %+v", st)
	}
	detailed := `{"compatible":"possync-arm64","booted":"B","boot_primary":"rootfs.1","slots":[{"rootfs.0":{"bootname":"A","state":"inactive","boot_status":"good","slot_status":{"bundle":{"compatible":"possync-arm64","version":"0.9.0"},"installed":{"timestamp":"2026-11-30T08:00:00Z","count":2},"status":"ok"}}},{"rootfs.1":{"bootname":"B","state":"booted","boot_status":"good"}}]}`
	st, err = update.ParseRaucStatus([]byte(detailed))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := st.Slot("A")
	if a.Version != "0.9.0" || a.Installed.IsZero() || a.Primary || st.Other("B") != "A" {
		t.Fatalf("slot A = %+v", a)
	}
	if _, err := update.ParseRaucStatus([]byte("Failed to connect to D-Bus")); err == nil {
		t.Fatal("non-JSON status accepted")
	}
}
