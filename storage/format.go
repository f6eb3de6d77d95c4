package storage

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/dgraph-io/badger/v4"

	"possync/appliance"
)

// Versions of the data (docs/the-box.md "Versions of the data").
//
// The meta key "format" holds the data format of the store, in Badger, so
// it is read in the same snapshot as the records and no file next to the
// store can disagree with them:
//
//	1 byte N          the store is in format N
//	2 bytes from, to  a migration from format `from` to `to` started and
//	                  has not finished (a crash stopped it)
//
// Any other value is a format this build does not know, taken as newer.
// Releases before migrations existed accept only the single byte 1 and
// refuse everything else as "newer format", so they never misread a
// migrated or half-migrated store.
//
// Open brings an older store to the current format: it first writes a
// copy of the whole store in Badger's backup format to
// pre-migration-<from>-<to>.backup in the data directory (fsynced, then
// renamed into place), then for each step sets the key to the two-byte
// "migrating" value, runs the step and sets the key to the new format. A
// crash before the marker leaves the old format, which the next start
// migrates again; a crash after it leaves a store that this build (or a
// newer one) finishes migrating — the steps are idempotent — and that an
// older build refuses. The copy is what an older build restores
// (possync recover, then possync restore) after a rollback.

// baseFormat is the layout described in the package doc. A store without
// a format key has it: every release so far wrote it.
const baseFormat = 1

// migration turns a store of format baseFormat+i into baseFormat+i+1,
// where i is its index in migrations.
type migration struct {
	name string
	// run rewrites the store through bdb, in as many transactions as it
	// needs (each is fsynced). It must be idempotent: after a crash it
	// runs again, from the start, on a partly migrated store. If it
	// changes how records decode, Check must learn the older layout too.
	run func(bdb *badger.DB) error
}

// migrations are the steps from baseFormat to the current format. The
// current release has none; tests register one (format_test.go).
var migrations []migration

// migrateHook, when set by a test, is called at each stage of a
// migration; an error stops the migration there, as a crash would.
var migrateHook func(stage string) error

// currentFormat is the format this build writes.
func currentFormat() int { return baseFormat + len(migrations) }

// ProblemMigration classifies a store that needed a migration which
// could not be done (no room for the pre-migration copy, or a step
// failed). The store is left as the migration left it: in its old format,
// or marked as migrating, which the next start resumes.
const ProblemMigration Problem = "migration failed"

// preMigrationPrefix starts the name of the copies kept before a migration.
const preMigrationPrefix = "pre-migration-"

// errFormat marks an error that already carries its problem class.
type errFormat struct {
	problem Problem
	err     error
}

func (e *errFormat) Error() string { return e.err.Error() }
func (e *errFormat) Unwrap() error { return e.err }

// formatState is what the format key says.
type formatState struct {
	found    bool // the key exists
	format   int  // the store's format; for a migration, its target
	from     int  // a migration from this format was interrupted (0: none)
	unparsed []byte
}

func (s formatState) String() string {
	switch {
	case s.unparsed != nil:
		return fmt.Sprintf("unknown format value %x", s.unparsed)
	case s.from != 0:
		return fmt.Sprintf("format %d, migration to %d interrupted", s.from, s.format)
	default:
		return fmt.Sprintf("format %d", s.format)
	}
}

// readFormat reads the format key. A store without one has baseFormat.
func readFormat(txn *badger.Txn) (formatState, error) {
	item, err := txn.Get(keyFormat)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return formatState{format: baseFormat}, nil
	}
	if err != nil {
		return formatState{}, err
	}
	v, err := item.ValueCopy(nil)
	if err != nil {
		return formatState{}, err
	}
	st := formatState{found: true}
	switch {
	case len(v) == 1 && v[0] > 0:
		st.format = int(v[0])
	case len(v) == 2 && v[0] > 0 && v[1] > v[0]:
		st.from, st.format = int(v[0]), int(v[1])
	default:
		st.unparsed, st.format = v, 256 // beyond every format a byte holds
	}
	return st, nil
}

// checkFormat refuses a store whose format is newer than this build's.
func checkFormat(dir string, st formatState) error {
	if st.format <= currentFormat() && st.unparsed == nil {
		return nil
	}
	return &errFormat{ProblemNewerFormat, fmt.Errorf("%s, this possync (%s) reads formats up to %d%s: %w",
		st, appliance.Version, currentFormat(), preMigrationCopies(dir), errNewerFormat)}
}

// preMigrationCopies names the pre-migration copies in dir, for messages.
func preMigrationCopies(dir string) string {
	names, _ := filepath.Glob(filepath.Join(dir, preMigrationPrefix+"*.backup"))
	if len(names) == 0 {
		return ""
	}
	for i := range names {
		names[i] = filepath.Base(names[i])
	}
	return "; copies kept before migrations: " + strings.Join(names, ", ")
}

// ensureFormat records the format of a new store, refuses a newer one and
// migrates an older one (see above). It runs in Open before anything else
// reads the store.
func (db *DB) ensureFormat(inMemory bool) error {
	var st formatState
	empty := false
	err := db.bdb.View(func(txn *badger.Txn) error {
		var err error
		if st, err = readFormat(txn); err != nil || st.found {
			return err
		}
		it := txn.NewIterator(badger.IteratorOptions{})
		defer it.Close()
		it.Rewind()
		empty = !it.Valid()
		return nil
	})
	if err != nil {
		return err
	}
	if err := checkFormat(db.dir, st); err != nil {
		return err
	}
	cur := currentFormat()
	switch {
	case !st.found && empty:
		return db.setFormat(cur)
	case st.from == 0 && st.format == cur:
		if !st.found {
			return db.setFormat(cur) // a store from before the format key
		}
		return nil
	}
	from := st.format
	if st.from != 0 {
		from = st.from
		db.logger.Warn("resuming an interrupted migration of the data", "dir", db.dir, "from_format", from, "to_format", st.format)
	} else if !inMemory {
		if err := db.writePreMigrationCopy(from, cur); err != nil {
			return &errFormat{ProblemMigration, fmt.Errorf("format %d needs a migration to %d, and the copy of the store kept before it could not be written (the store is unchanged): %w", from, cur, err)}
		}
	}
	for f := from; f < cur; f++ {
		m := migrations[f-baseFormat]
		db.logger.Info("migrating the data", "dir", db.dir, "from_format", f, "to_format", f+1, "step", m.name)
		if err := db.bdb.Update(func(txn *badger.Txn) error { return txn.Set(keyFormat, []byte{byte(f), byte(f + 1)}) }); err != nil {
			return &errFormat{ProblemMigration, fmt.Errorf("mark migration %d→%d: %w", f, f+1, err)}
		}
		err := hook("marked")
		if err == nil {
			err = m.run(db.bdb)
		}
		if err == nil {
			err = hook("ran")
		}
		if err != nil {
			return &errFormat{ProblemMigration, fmt.Errorf("migration %d→%d (%s) stopped; the next start resumes it: %w", f, f+1, m.name, err)}
		}
		if err := db.setFormat(f + 1); err != nil {
			return &errFormat{ProblemMigration, fmt.Errorf("finish migration %d→%d: %w", f, f+1, err)}
		}
	}
	db.logger.Info("data migrated", "dir", db.dir, "format", cur)
	return nil
}

// hook calls migrateHook if a test set it.
func hook(stage string) error {
	if migrateHook == nil {
		return nil
	}
	return migrateHook(stage)
}

// setFormat records format f, durably.
func (db *DB) setFormat(f int) error {
	return db.bdb.Update(func(txn *badger.Txn) error { return txn.Set(keyFormat, []byte{byte(f)}) })
}

// writePreMigrationCopy writes a backup of the whole store to
// pre-migration-<from>-<to>.backup in the data directory: to a .tmp file
// first, fsynced, then renamed and the directory fsynced, so the copy is
// whole or absent. It refuses when the file system would keep less than
// the reserve free.
func (db *DB) writePreMigrationCopy(from, to int) error {
	name := filepath.Join(db.dir, fmt.Sprintf("%s%d-%d.backup", preMigrationPrefix, from, to))
	lsm, vlog := db.bdb.Size()
	need := uint64(max(lsm+vlog, 0)) + db.reserve
	if db.freeBytes != nil {
		if free, err := db.freeBytes(db.dir); err == nil && free < need {
			return fmt.Errorf("%d MiB free in %s, the copy and the reserve need about %d MiB: %w", free>>20, db.dir, need>>20, syscall.ENOSPC)
		}
	}
	tmp := name + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 64<<10)
	_, err = db.bdb.Backup(bw, 0)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = hook("copy-written")
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err == nil {
		err = syncDir(db.dir)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", name, err)
	}
	db.logger.Info("store copied before migrating the data", "file", name, "from_format", from, "to_format", to)
	return nil
}

// syncDir fsyncs a directory, so a rename in it is durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// isPreMigrationCopy reports whether name is a copy written before a
// migration (or one being written); Check does not copy them.
func isPreMigrationCopy(name string) bool {
	return strings.HasPrefix(name, preMigrationPrefix) &&
		slices.ContainsFunc([]string{".backup", ".backup.tmp"}, func(s string) bool { return strings.HasSuffix(name, s) })
}

// Format returns the data format of the open store: always this build's,
// since Open migrated an older store and refused a newer one.
func (db *DB) Format() int { return currentFormat() }

// refuseNewerFormat reads the data format of an existing store read-only
// and refuses a newer one before Badger opens it read-write: a read-write
// open creates value-log and memtable files, and systemd restarts a
// refused serve every 2 s. When the read-only open fails (after a power
// cut Badger's read-only mode refuses the newest memtable), the format is
// checked by init after the read-write open instead, as before.
func refuseNewerFormat(dir string, opts Options, logger *slog.Logger) error {
	if _, err := os.Stat(filepath.Join(dir, "MANIFEST")); err != nil {
		return nil // a new store, or damage Badger's open reports
	}
	bdb, err := badger.Open(badgerOptions(dir, opts, logger).WithReadOnly(true))
	if err != nil {
		logger.Debug("read-only format check skipped", "dir", dir, "err", err)
		return nil
	}
	defer bdb.Close()
	var st formatState
	if err := bdb.View(func(txn *badger.Txn) error {
		st, err = readFormat(txn)
		return err
	}); err != nil {
		return nil
	}
	return checkFormat(dir, st)
}
