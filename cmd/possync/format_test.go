package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

// storeFixture is a store written by this release's possync serve (data
// format 1), kept so that later releases test their migration from it.
// TestWriteStoreFixture wrote it; fixture.json holds what it contains.
const storeFixture = "../../testdata/store-format1"

// fixtureFacts is fixture.json.
type fixtureFacts struct {
	Orders    map[string]int // uid → order number, multi-session 1
	MessageID int            // POS 1's last message_ID
	BusID     int            // newest bus id
}

// TestWriteStoreFixture regenerates testdata/store-format1 with a real
// server: POSSYNC_WRITE_STORE_FIXTURE=1 go test -run TestWriteStoreFixture ./cmd/possync/
// Only a release that changes nothing in the data format may do so; a
// release with a migration keeps this one and adds store-format<N>.
func TestWriteStoreFixture(t *testing.T) {
	if os.Getenv("POSSYNC_WRITE_STORE_FIXTURE") != "1" {
		t.Skip("set POSSYNC_WRITE_STORE_FIXTURE=1 to regenerate " + storeFixture)
	}
	dir := t.TempDir()
	c := startChild(t, dir)
	mustUpdate(t, c.url, syncAll(2))
	facts := fixtureFacts{Orders: map[string]int{}}
	for i := 1; i <= 6; i++ {
		uid := fmt.Sprintf("00001-001-%04d", i)
		msg := order(uid, i, 1, fmt.Sprintf("n%d", i))
		if i == 6 { // large enough for Badger's value log
			msg["data"].(map[string]any)["note"] = strings.Repeat("long order note ", 200)
		}
		res := mustUpdate(t, c.url, msg)
		facts.Orders[uid] = n(res["order_ID"])
	}
	_, data := listOrders(t, c.url, 1, 1)
	facts.MessageID = n(data["message_ID"])
	facts.BusID = newestBusID(t, c.url)
	c.stop(t)

	if err := os.RemoveAll(storeFixture); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(storeFixture, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !e.Type().IsRegular() || e.Name() == "LOCK" {
			continue // tls/ is the box's CA, not the store
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err == nil {
			err = os.WriteFile(filepath.Join(storeFixture, e.Name()), b, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	b, _ := json.MarshalIndent(facts, "", "  ")
	if err := os.WriteFile(filepath.Join(storeFixture, "fixture.json"), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s: %+v", storeFixture, facts)
}

// copyFixture copies the store fixture into a new data directory.
func copyFixture(t *testing.T) (string, fixtureFacts) {
	t.Helper()
	var facts fixtureFacts
	raw, err := os.ReadFile(filepath.Join(storeFixture, "fixture.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &facts); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	entries, err := os.ReadDir(storeFixture)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == "fixture.json" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(storeFixture, e.Name()))
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, e.Name()), b, 0o600)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return dir, facts
}

// Issue 11 item 5: the store of the previous release (the fixture)
// opens with this build, every order is there with its number, and order
// numbers, the POS's message_ID and bus ids continue above it.
func TestPreviousReleaseStore(t *testing.T) {
	dir, facts := copyFixture(t)
	out, stderr, code := runPossync(t, "check-store", "-data", dir)
	if code != 0 || !strings.Contains(out, "data format 1") {
		t.Fatalf("check-store of the fixture: exit %d, %q %q; want OK with data format 1", code, out, stderr)
	}
	c := startChild(t, dir)
	orders, data := listOrders(t, c.url, 1, 1)
	maxNum := 0
	for uid, num := range facts.Orders {
		d, ok := orders[uid]
		if !ok || n(d["sequence_number"]) != num {
			t.Errorf("order %s: %v, want it with number %d", uid, d, num)
		}
		maxNum = max(maxNum, num)
	}
	if m := n(data["message_ID"]); m <= facts.MessageID {
		t.Errorf("message_ID %d, want above the stored %d", m, facts.MessageID)
	}
	res := mustUpdate(t, c.url, order("after-upgrade", 1, 1, "z"))
	if num := n(res["order_ID"]); num != maxNum+1 {
		t.Errorf("next order number %d, want %d", num, maxNum+1)
	}
	if bus := newestBusID(t, c.url); bus <= facts.BusID {
		t.Errorf("bus id %d, want above the stored %d", bus, facts.BusID)
	}
	resp, err := http.Get(c.url + "/status.json")
	if err != nil {
		t.Fatal(err)
	}
	var status struct{ Info map[string]string }
	err = json.NewDecoder(resp.Body).Decode(&status)
	resp.Body.Close()
	if err != nil || status.Info["Data format"] != "1" {
		t.Errorf("status.json info = %v (%v), want \"Data format\": \"1\"", status.Info, err)
	}
	c.stop(t)
}

// setFormat writes the raw value of the format key (storage/doc.go:
// key 0x00 "format"), as a newer possync would leave it.
func setFormat(t *testing.T, dir string, v []byte) {
	t.Helper()
	bdb, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := bdb.Update(func(txn *badger.Txn) error { return txn.Set([]byte("\x00format"), v) }); err != nil {
		t.Fatal(err)
	}
	if err := bdb.Close(); err != nil {
		t.Fatal(err)
	}
}

// Issue 11 item 5: a store of a newer data format (here: a migration to
// format 2 was done by a newer possync, which kept its copy) is refused by
// serve with exit 3 and a line naming the directory, both formats and the
// copy; check-store says the same; recover moves it aside with the copy,
// and restore of that copy gives back a store this build serves.
func TestNewerFormatStoreRefused(t *testing.T) {
	dir, facts := copyFixture(t)
	// The newer possync's copy before migrating: a backup of the format-1
	// store, as `possync backup` writes it.
	c := startChild(t, dir)
	if out, stderr, code := runPossync(t, "backup", "-url", c.url, "-o", filepath.Join(dir, "pre-migration-1-2.backup")); code != 0 {
		t.Fatalf("backup: exit %d %s %s", code, out, stderr)
	}
	c.stop(t)
	setFormat(t, dir, []byte{2})

	before := fileSums(t, dir)
	_, stderr, code := runPossync(t, "serve", "-listen", "127.0.0.1:0", "-data", dir, "-mdns=false")
	for range 2 { // systemd's restarts: each refusal writes nothing
		runPossync(t, "serve", "-listen", "127.0.0.1:0", "-data", dir, "-mdns=false")
	}
	if after := fileSums(t, dir); !slices.Equal(before, after) {
		t.Errorf("refusing a newer store changed its files:\nbefore %v\nafter  %v", before, after)
	}
	for _, want := range []string{"store cannot be opened", "(newer format)", dir, "format 2, this possync (dev) reads formats up to 1",
		"pre-migration-1-2.backup", "possync recover -data " + dir} {
		if code != exitStore || !strings.Contains(stderr, want) {
			t.Errorf("serve on a format-2 store: exit %d, want 3 and %q in:\n%s", code, want, stderr)
		}
	}
	t.Logf("serve on a newer store, exit %d:\n%s", code, stderr)
	out, stderr, code := runPossync(t, "check-store", "-data", dir)
	if code != exitStore || !strings.Contains(stderr, "format 2") {
		t.Errorf("check-store of a format-2 store: exit %d, %q %q", code, out, stderr)
	}

	out, stderr, code = runPossync(t, "recover", "-data", dir)
	if code != 0 {
		t.Fatalf("recover: exit %d, %q %q", code, out, stderr)
	}
	copies, _ := filepath.Glob(filepath.Join(dir, "damaged-*", "pre-migration-1-2.backup"))
	if len(copies) != 1 {
		t.Fatalf("recover did not keep the pre-migration copy: %v", copies)
	}
	restored := filepath.Join(t.TempDir(), "restored")
	if out, stderr, code = runPossync(t, "restore", copies[0], "-data", restored); code != 0 {
		t.Fatalf("restore of the pre-migration copy: exit %d, %q %q", code, out, stderr)
	}
	c = startChild(t, restored)
	orders, _ := listOrders(t, c.url, 1, 1)
	if len(orders) != len(facts.Orders) {
		t.Errorf("after rolling back: %d orders, want %d", len(orders), len(facts.Orders))
	}
	c.stop(t)

	// A backup of a newer format is refused by restore, exit 3.
	setFormat(t, restored, []byte{2})
	bdb, err := badger.Open(badger.DefaultOptions(restored).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "format2.backup")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	_, err = bdb.Backup(f, 0)
	f.Close()
	bdb.Close()
	if err != nil {
		t.Fatal(err)
	}
	out, stderr, code = runPossync(t, "restore", file, "-data", filepath.Join(t.TempDir(), "r"))
	if code != exitStore || !strings.Contains(stderr, "(newer format)") {
		t.Errorf("restore of a format-2 backup: exit %d, %q %q; want 3, newer format", code, out, stderr)
	}
}
