package storage

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
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
// refused with an *OpenError (ProblemNewerFormat).
//
// The backup is loaded into a scratch directory inside dir and its files
// are moved into dir only once it opens and reads back: a truncated,
// empty, damaged or newer-format backup is refused with an error and
// leaves dir as it was (a dir that did not exist is removed again). It
// returns Check's report of the restored store.
func Restore(dir string, r io.Reader, opts Options) (rep Report, err error) {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return Report{}, fmt.Errorf("restore into %s: %w", dir, err)
		}
		defer func() {
			if err != nil {
				os.RemoveAll(dir)
			}
		}()
	case err != nil:
		return Report{}, fmt.Errorf("restore into %s: %w", dir, err)
	case slices.ContainsFunc(entries, func(e os.DirEntry) bool { return !(e.IsDir() && strings.HasPrefix(e.Name(), "damaged-")) }):
		return Report{}, fmt.Errorf("restore into %s: the directory is not empty (%d entries); restore into an empty one", dir, len(entries))
	}
	scratch, err := os.MkdirTemp(dir, "damaged-restore-in-progress-")
	if err != nil {
		return Report{}, fmt.Errorf("restore into %s: %w", dir, err)
	}
	defer os.RemoveAll(scratch)
	rep, err = restoreInto(scratch, r, opts)
	if err != nil {
		var oe *OpenError
		if errors.As(err, &oe) { // name the target, not the scratch directory
			oe.Dir, oe.File = dir, strings.ReplaceAll(oe.File, scratch, dir)
		}
		return Report{}, fmt.Errorf("restore into %s: %w", dir, err)
	}
	files, err := os.ReadDir(scratch)
	if err != nil {
		return Report{}, fmt.Errorf("restore into %s: %w", dir, err)
	}
	for _, f := range files {
		if err := os.Rename(filepath.Join(scratch, f.Name()), filepath.Join(dir, f.Name())); err != nil {
			return Report{}, fmt.Errorf("restore into %s: move the restored files in: %w", dir, err)
		}
	}
	// restoreInto checked the store before it was moved in; renames keep
	// the files as they were, so it is not checked a second time.
	if err := syncDir(dir); err != nil {
		return Report{}, fmt.Errorf("restore into %s: %w", dir, err)
	}
	rep.Dir = dir
	return rep, nil
}

// restoreInto loads the backup into the empty directory dir, then opens
// (migrating an older format, refusing a newer one) and checks it; it
// returns the check's report.
func restoreInto(dir string, r io.Reader, opts Options) (Report, error) {
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
		return Report{}, classifyOpenError(dir, err)
	}
	if err := loadBackup(bdb, r); err != nil {
		bdb.Close()
		return Report{}, err
	}
	if err := bdb.Close(); err != nil {
		return Report{}, err
	}
	db, err := Open(dir, opts)
	if err != nil {
		return Report{}, err
	}
	if err := db.Close(); err != nil {
		return Report{}, err
	}
	return Check(context.Background(), dir, opts.Logger)
}

// loadBackup streams a Badger backup into bdb. Badger's loader panics on
// some damaged input (a length field out of range); that, a short read and
// an empty stream are errors.
func loadBackup(bdb *badger.DB, r io.Reader) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("read backup: the file is damaged or not a possync backup (%v)", p)
		}
	}()
	cr := &countingReader{r: r}
	if err := bdb.Load(bufio.NewReaderSize(cr, 64<<10), 64); err != nil {
		return fmt.Errorf("read backup: the file is damaged, cut short or not a possync backup: %w", err)
	}
	if cr.n == 0 {
		return errors.New("read backup: the file is empty")
	}
	empty := true
	if err := bdb.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{})
		defer it.Close()
		it.Rewind()
		empty = !it.Valid()
		return nil
	}); err != nil {
		return fmt.Errorf("read backup: %w", err)
	}
	if empty {
		return errors.New("read backup: the file holds no records: not a possync backup")
	}
	return nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
