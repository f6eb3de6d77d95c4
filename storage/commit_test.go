package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"syscall"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"possync/appliance"
)

func TestUnavailable(t *testing.T) {
	b := &appliance.Batch{Sessions: make([]appliance.SessionRecord, 3)}
	tests := []struct {
		err  error
		want string // "" = not an availability problem
	}{
		{fmt.Errorf("load: %w", appliance.ErrClosed), "store is closed"},
		{badger.ErrBlockedWrites, "store is closed"},
		{badger.ErrDBClosed, "store is closed"},
		{badger.ErrTxnTooBig, "batch of 3 records is too large for one transaction"},
		{fmt.Errorf("write: %w", syscall.ENOSPC), "disk is full"},
		{fmt.Errorf("sync err: %+v", syscall.ENOSPC), "disk is full"}, // flattened by y.Wrap
		{syscall.EDQUOT, "disk is full"},
		{fmt.Errorf("open: %w", syscall.EROFS), "file system is read-only"},
		{badger.ErrConflict, ""},
		{errors.New("boom"), ""},
	}
	for _, tt := range tests {
		if got := unavailable(tt.err, b); got != tt.want {
			t.Errorf("unavailable(%v) = %q, want %q", tt.err, got, tt.want)
		}
		err := commitError(tt.err, b)
		if code := appliance.ErrorCode(err); (code == appliance.EUNAVAILABLE) != (tt.want != "") {
			t.Errorf("ErrorCode(commitError(%v)) = %q", tt.err, code)
		}
		if !errors.Is(err, tt.err) {
			t.Errorf("commitError(%v) = %v, does not wrap the cause", tt.err, err)
		}
	}
}

// TestCommitDiskFull checks that Commit refuses a write, with nothing
// applied, when the file system is short of the reserve.
func TestCommitDiskFull(t *testing.T) {
	ctx := context.Background()
	db, err := Open(t.TempDir(), Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("Open() = %v", err)
	}
	defer db.Close()
	if free, err := db.freeBytes(db.dir); err != nil || free == 0 {
		t.Errorf("statfsFree(%q) = %d, %v; want the free bytes", db.dir, free, err)
	}
	db.freeBytes = func(string) (uint64, error) { return db.reserve - 1, nil }
	b := &appliance.Batch{Sessions: []appliance.SessionRecord{{OrderID: 1}}}
	err = db.Commit(ctx, b)
	if appliance.ErrorCode(err) != appliance.EUNAVAILABLE || !errors.Is(err, syscall.ENOSPC) ||
		!strings.Contains(err.Error(), "disk is full") {
		t.Errorf("Commit() on a full disk = %v, want EUNAVAILABLE disk is full", err)
	}
	db.freeBytes = func(string) (uint64, error) { return 0, errors.New("statfs: not supported") }
	if err := db.Commit(ctx, b); err != nil {
		t.Errorf("Commit() when free space is unknown = %v, want nil", err)
	}
}
