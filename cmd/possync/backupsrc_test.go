package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"possync/appliance"
	"possync/storage"
)

// possync backup pointed at an HTTP server that is not possync (another
// service on the port, a typo in -url) refuses what it answers, even a
// 200, and writes neither FILE nor FILE.sha256: a web page kept as "the
// backup" would only be found out on the day it is restored. A possync
// JSON-RPC refusal is reported by its message, not as a raw body.
func TestBackupRefusesAnotherServer(t *testing.T) {
	cases := map[string]http.HandlerFunc{
		"200 html": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte("<html>hello</html>"))
		},
		"200 octet-stream from another server": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Server", "SimpleHTTP/0.6 Python/3.11")
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write([]byte("not a backup"))
		},
	}
	for name, h := range cases {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(h)
			defer srv.Close()
			out := filepath.Join(t.TempDir(), "shop.backup")
			var stdout, stderr bytes.Buffer
			err := runBackup(context.Background(), []string{"-url", srv.URL, "-o", out}, &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), "not a possync server") {
				t.Fatalf("backup from a non-possync server = %v (stdout %q), want an error saying it is not possync", err, stdout.String())
			}
			t.Log(err)
			entries, _ := os.ReadDir(filepath.Dir(out))
			if len(entries) != 0 {
				t.Errorf("a refused backup left files: %v", entries)
			}
		})
	}
	t.Run("possync refusal", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Server", "possync")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte(`{"jsonrpc":"2.0","id":null,"error":{"code":200,"message":"Odoo Server Error","data":{"name":"werkzeug.exceptions.BadRequest","message":"backups are served to loopback clients only","arguments":[],"debug":"","exception_type":"internal_error","context":{}}}}`))
		}))
		defer srv.Close()
		out := filepath.Join(t.TempDir(), "shop.backup")
		err := runBackup(context.Background(), []string{"-url", srv.URL, "-o", out}, &bytes.Buffer{}, &bytes.Buffer{})
		if err == nil || !strings.HasSuffix(err.Error(), "403 Forbidden: backups are served to loopback clients only") {
			t.Fatalf("backup refused by possync = %v, want the refusal's message", err)
		}
	})
}

// A backup holding a damaged order (no FILE.sha256 to catch it) is
// refused by possync restore with exit 3, naming the order and saying the
// backup is damaged and nothing was changed, not pointing at check-store
// for a directory that was never created.
func TestRestoreDamagedBackupSaysSo(t *testing.T) {
	src := t.TempDir()
	db, err := storage.Open(src, storage.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	s := appliance.SessionKey{DB: "shop", ID: 1}
	if err := db.Commit(context.Background(), &appliance.Batch{
		Sessions: []appliance.SessionRecord{{Key: s, OrderID: 1, RunID: 1}},
		Orders: []appliance.OrderRecord{{Key: appliance.OrderKey{Session: s, UID: "00001-001-0001"}, Revision: 1,
			State: appliance.StateDraft, Run: 1, Updated: time.Unix(1700000000, 0), Message: []byte(`{"uid"` + "\xff" + `"00001-001-0001"}`)}},
	}); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "shop.backup")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Backup(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	db.Close()
	dir := filepath.Join(t.TempDir(), "data")
	err = runRestore(context.Background(), []string{file, "-data", dir}, &bytes.Buffer{}, &bytes.Buffer{})
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitStore {
		t.Fatalf("restore of a damaged backup = %v, want exit %d", err, exitStore)
	}
	msg := err.Error()
	for _, want := range []string{"00001-001-0001", "not valid JSON", "the backup is damaged", "nothing was changed"} {
		if !strings.Contains(msg, want) {
			t.Errorf("restore error %q does not say %q", msg, want)
		}
	}
	if strings.Contains(msg, "check-store") {
		t.Errorf("restore error %q points at check-store for a directory it did not create", msg)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("a refused restore left %s (stat: %v)", dir, err)
	}
}

// A backup never overwrites a file, not even one named like its
// temporary files (FILE.tmp, FILE.sha256.tmp), and leaves no temporary
// file behind.
func TestBackupKeepsFilesNamedLikeItsTemporaries(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "possync")
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write([]byte("stream"))
	}))
	defer srv.Close()
	dir := t.TempDir()
	out := filepath.Join(dir, "shop.backup")
	for _, p := range []string{out + ".tmp", out + ".sha256.tmp"} {
		if err := os.WriteFile(p, []byte("precious"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := runBackup(context.Background(), []string{"-url", srv.URL, "-o", out}, &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{out + ".tmp", out + ".sha256.tmp"} {
		if b, err := os.ReadFile(p); err != nil || string(b) != "precious" {
			t.Errorf("backup changed %s: %q, %v", p, b, err)
		}
	}
	if b, err := os.ReadFile(out); err != nil || string(b) != "stream" {
		t.Errorf("backup wrote %q, %v", b, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 4 {
		t.Errorf("after the backup the directory holds %d entries, want the 2 files and the 2 kept: %v", len(entries), entries)
	}
}

// check-store of a directory without a store says so instead of "OK: 0
// orders ... data " (an empty format), and names what an interrupted
// restore left there (the restore was not done).
func TestCheckStoreEmptyDirectory(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	if err := runCheckStore(context.Background(), []string{"-data", dir}, &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "no store") || strings.Contains(out.String(), "OK") {
		t.Errorf("check-store of an empty directory printed %q, want it to say there is no store", out.String())
	}
	if err := os.Mkdir(filepath.Join(dir, "damaged-restore-in-progress-123"), 0o700); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := runCheckStore(context.Background(), []string{"-data", dir}, &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "damaged-restore-in-progress-123") || !strings.Contains(out.String(), "interrupted restore") {
		t.Errorf("check-store of a directory left by an interrupted restore printed %q, want it named", out.String())
	}
}
