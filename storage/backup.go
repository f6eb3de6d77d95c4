package storage

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
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
// recover are allowed): a restore never mixes with or replaces a store. The restored store continues from the backup's counters.
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
	db, err := Open(dir, opts)
	if err != nil {
		return fmt.Errorf("restore into %s: %w", dir, err)
	}
	if err := db.bdb.Load(bufio.NewReaderSize(r, 64<<10), 64); err != nil {
		db.Close()
		return fmt.Errorf("restore into %s: read backup: %w", dir, err)
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("restore into %s: %w", dir, err)
	}
	if _, err := Check(context.Background(), dir, opts.Logger); err != nil {
		return fmt.Errorf("restore into %s: the restored store does not read back: %w", dir, err)
	}
	return nil
}
