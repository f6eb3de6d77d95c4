package storage

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A data directory holding only the box-id file possync's discovery keeps
// there (no machine id; the store's files deleted or not yet written) is
// possync's own, not a mistyped -data: a new store starts in it.
func TestBoxIDFileIsPossyncs(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "box-id"), []byte("0123456789abcdef\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	db, err := Open(dir, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("Open(dir holding only box-id) = %v, want a new store", err)
	}
	db.Close()
}

// The "not a store" refusal names the directory once.
func TestNotAStoreNamesDirOnce(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(dir, Options{Logger: slog.New(slog.DiscardHandler)})
	var oe *OpenError
	if !errors.As(err, &oe) || oe.Problem != ProblemNotAStore {
		t.Fatalf("Open(dir with notes.txt) = %v, want not a store", err)
	}
	if n := strings.Count(err.Error(), dir); n != 2 { // "store DIR cannot be opened (not a store): DIR: holds …"
		t.Errorf("error names %s %d times, want 2 (not joined to itself): %v", dir, n, err)
	}
}
