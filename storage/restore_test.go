package storage

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A backup that is cut short, empty, random bytes or has garbage appended
// is refused with an error naming the problem, without a panic, and the
// target is left as it was: a directory that did not exist is gone again,
// an empty one (with a damaged-* directory from recover) holds only that.
// A good backup then restores into the same directory.
func TestRestoreRefusesBadBackups(t *testing.T) {
	src := t.TempDir()
	fillFormat1(t, src)
	db, err := Open(src, quiet)
	if err != nil {
		t.Fatal(err)
	}
	var good bytes.Buffer
	if err := db.Backup(&good); err != nil {
		t.Fatal(err)
	}
	db.Close()
	random := make([]byte, 5000)
	rand.Read(random)
	cases := map[string][]byte{
		"truncated":        good.Bytes()[:good.Len()/2],
		"empty":            nil,
		"random":           random,
		"garbage appended": append(bytes.Clone(good.Bytes()), random[:3000]...),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			missing := filepath.Join(t.TempDir(), "new")
			_, err := Restore(missing, bytes.NewReader(b), quiet)
			if err == nil || !strings.Contains(err.Error(), "backup") {
				t.Fatalf("Restore(%s) = %v, want an error about the backup", name, err)
			}
			t.Logf("%s: %v", name, err)
			if _, err := os.Stat(missing); !os.IsNotExist(err) {
				t.Errorf("a refused restore left %s behind (stat: %v)", missing, err)
			}
			dir := t.TempDir()
			if err := os.Mkdir(filepath.Join(dir, "damaged-20260101T000000Z"), 0o700); err != nil {
				t.Fatal(err)
			}
			if _, err := Restore(dir, bytes.NewReader(b), quiet); err == nil {
				t.Fatalf("Restore(%s) into an empty dir = nil", name)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1 || entries[0].Name() != "damaged-20260101T000000Z" {
				t.Errorf("a refused restore changed the directory: %v", entries)
			}
			if _, err := Restore(dir, bytes.NewReader(good.Bytes()), quiet); err != nil {
				t.Fatalf("Restore(good backup) after a refused one = %v", err)
			}
		})
	}
}

// A backup damaged inside an order's JSON (a flipped byte that Badger's
// backup stream, which has no checksums, does not notice) is refused by
// Restore, naming the order: restored, it would make every full sync_all
// of its multi-session fail. Check reports the same store as damaged.
func TestRestoreRefusesDamagedOrderJSON(t *testing.T) {
	src := t.TempDir()
	fillFormat1(t, src)
	db, err := Open(src, quiet)
	if err != nil {
		t.Fatal(err)
	}
	var good bytes.Buffer
	if err := db.Backup(&good); err != nil {
		t.Fatal(err)
	}
	db.Close()
	b := bytes.Clone(good.Bytes())
	at := bytes.Index(b, []byte(`{"uid":7,"pad"`))
	if at < 0 {
		t.Fatal("order 7's JSON is not in the backup stream as written")
	}
	b[at+len(`{"uid"`)] = 0xff
	dir := filepath.Join(t.TempDir(), "new")
	_, err = Restore(dir, bytes.NewReader(b), quiet)
	if err == nil || !strings.Contains(err.Error(), "00001-001-0007") || !strings.Contains(err.Error(), "not valid JSON") {
		t.Fatalf("Restore(backup with a damaged order) = %v, want an error naming order 00001-001-0007 and its JSON", err)
	}
	t.Log(err)
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("a refused restore left %s behind (stat: %v)", dir, err)
	}
}
