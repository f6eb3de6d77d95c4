package storage

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/dgraph-io/badger/v4"
)

// Backup writes a consistent, online copy of the whole store to w in
// Badger's backup format (a stream of key-value lists at one read
// timestamp): commits go on while it runs, and the copy holds exactly the
// commits acknowledged before it started, with their counters.
func (db *DB) Backup(w io.Writer) error {
	if err := db.use("backup"); err != nil {
		return err
	}
	defer db.closeMu.RUnlock()
	bw := bufio.NewWriterSize(w, 64<<10)
	if _, err := db.bdb.Backup(bw, 0); err != nil {
		return fmt.Errorf("backup store %s: %w", db.dir, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("backup store %s: %w", db.dir, err)
	}
	return nil
}

// Restore creates a store in dir from a backup written by Backup. dir
// must not exist or be empty (damaged-* directories left by possync
// recover are allowed): a restore never mixes with or replaces a store. The
// restored store continues from the backup's counters and keeps the backup's
// data format: an older one is migrated (format.go), a newer one is
// refused with an *OpenError (ProblemNewerFormat) and left in dir.
func Restore(dir string, r io.Reader, opts Options) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("restore into %s: %w", dir, err)
		}
	case err != nil:
		return fmt.Errorf("restore into %s: %w", dir, err)
	case slices.ContainsFunc(entries, func(e os.DirEntry) bool { return !(e.IsDir() && strings.HasPrefix(e.Name(), "damaged-")) }):
		return fmt.Errorf("restore into %s: the directory is not empty (%d entries); restore into an empty one", dir, len(entries))
	}
	// Load into plain Badger, not into Open's store: Open would record
	// the current format first, and the backup's own format key (older
	// or newer) must be the one that counts. Open then migrates or
	// refuses it like any store (format.go).
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	bdb, err := badger.Open(badgerOptions(dir, opts, logger.With("component", "storage")))
	if err != nil {
		return fmt.Errorf("restore into %s: %w", dir, classifyOpenError(dir, err))
	}
	if err := bdb.Load(bufio.NewReaderSize(r, 64<<10), 64); err != nil {
		bdb.Close()
		return fmt.Errorf("restore into %s: read backup: %w", dir, err)
	}
	if err := bdb.Close(); err != nil {
		return fmt.Errorf("restore into %s: %w", dir, err)
	}
	db, err := Open(dir, opts)
	if err != nil {
		return fmt.Errorf("restore into %s: %w", dir, err)
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("restore into %s: %w", dir, err)
	}
	if _, err := Check(context.Background(), dir, opts.Logger); err != nil {
		return fmt.Errorf("restore into %s: the restored store does not read back: %w", dir, err)
	}
	return nil
}
