package storage_test

import (
	"log/slog"
	"testing"

	"possync/appliance"
	"possync/storage"
	"possync/storage/storagetest"
)

// mustOpen opens a store on dir with logs discarded and closes it at the
// end of the test.
func mustOpen(tb testing.TB, dir string) *storage.DB {
	tb.Helper()
	db, err := storage.Open(dir, storage.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		tb.Fatalf("Open(%q) = %v", dir, err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func TestConformance(t *testing.T) {
	storagetest.RunPersistent(t, func(t *testing.T, dir string) appliance.Store {
		return mustOpen(t, dir)
	})
}
