package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"

	"github.com/dgraph-io/badger/v4"

	"possync/appliance"
)

// Problem classifies why a store cannot be opened.
type Problem string

const (
	ProblemDamaged     Problem = "damaged"      // truncated or corrupt files
	ProblemPermission  Problem = "permission"   // a file or the directory cannot be read or written
	ProblemNewerFormat Problem = "newer format" // written by a newer possync (or Badger)
	ProblemInUse       Problem = "in use"       // another process holds the store
	ProblemMissing     Problem = "missing"      // the directory does not exist
	ProblemNotAStore   Problem = "not a store"  // files but no store: a mistyped -data
)

// OpenError is returned by Open and Check when the store cannot be opened.
// File is the file named by the failure ("" when none is known).
type OpenError struct {
	Dir     string
	File    string
	Problem Problem
	Err     error
}

func (e *OpenError) Error() string {
	where := e.Dir
	switch {
	case filepath.IsAbs(e.File): // the directory itself, or a path of its own
		where = e.File
	case e.File != "":
		where = filepath.Join(e.Dir, e.File)
	}
	return fmt.Sprintf("store %s cannot be opened (%s): %s: %v", e.Dir, e.Problem, where, e.Err)
}

func (e *OpenError) Unwrap() error { return e.Err }

// errNewerFormat marks a format key this build does not know.
var errNewerFormat = errors.New("store written by a newer possync")

var fileInErr = regexp.MustCompile(`(?i)([0-9]{6}\.(?:sst|vlog|mem)|MANIFEST|DISCARD|KEYREGISTRY|LOCK)`)

// classifyOpenError wraps an error of badger.Open or init as *OpenError.
func classifyOpenError(dir string, err error) *OpenError {
	if fe := (*errFormat)(nil); errors.As(err, &fe) { // format.go knows its class
		return &OpenError{Dir: dir, Problem: fe.problem, Err: err}
	}
	e := &OpenError{Dir: dir, Problem: ProblemDamaged, Err: err}
	msg := err.Error()
	if m := fileInErr.FindString(msg); m != "" {
		e.File = m
		if !strings.HasSuffix(m, "sst") && !strings.HasSuffix(m, "vlog") && !strings.HasSuffix(m, "mem") {
			e.File = strings.ToUpper(m) // Badger says "manifest has bad magic"
		}
	}
	switch {
	case errors.Is(err, fs.ErrNotExist) && e.File == "":
		e.Problem = ProblemMissing
	case errors.Is(err, fs.ErrPermission) || isErrno(err, syscall.EACCES) || isErrno(err, syscall.EPERM):
		e.Problem = ProblemPermission
	case strings.Contains(msg, "Cannot acquire directory lock"):
		e.Problem = ProblemInUse
	case errors.Is(err, errNewerFormat) || strings.Contains(msg, "manifest has unsupported version") ||
		strings.Contains(msg, "unsupported version"):
		e.Problem = ProblemNewerFormat
	}
	return e
}

// Report is what Check found in a store.
type Report struct {
	Dir                         string
	Empty                       bool // no store files: serve starts a new store
	Sessions, POS, Orders, Bcst int
	LastBusID                   uint64
	LSMBytes, VLogBytes         int64
	// Format is the data format found (format.go); Migrate is set when
	// it is older than this build's, or a migration was interrupted:
	// serve migrates it on start. FormatNote says so in words.
	Format     int
	Migrate    bool
	FormatNote string
}

// Check opens a scratch copy of the store in dir read-only (shadow.go),
// reads and decodes every record and reports what it holds. It never
// changes a store file in dir, and it reports table files that opening the
// store would delete as damage. A store that cannot
// be opened or read gives an *OpenError.
func Check(ctx context.Context, dir string, logger *slog.Logger) (Report, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	rep := Report{Dir: dir}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return rep, classifyOpenError(dir, err)
	}
	if !slices.ContainsFunc(entries, func(e fs.DirEntry) bool { return !e.IsDir() }) {
		rep.Empty = true
		return rep, nil // empty (possync recover leaves damaged-* directories): serve starts afresh
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return rep, classifyOpenError(dir, err)
	}
	defer unlock()
	if err := syscall.Access(dir, 2); err != nil { // W_OK: serve must write there (LOCK, WAL)
		return rep, &OpenError{Dir: dir, File: dir, Problem: ProblemPermission, Err: fmt.Errorf("the directory is not writable by this user: %w", err)}
	}
	if err := verifyFiles(dir); err != nil { // before Badger, which panics on some damage
		return rep, err
	}
	shadow, err := shadowCopy(dir, entries)
	if err != nil {
		return rep, err
	}
	defer os.RemoveAll(shadow)
	// Read-write, on the copy only: after a crash or power cut the newest
	// memtable's WAL ends before its preallocated size, and Badger's
	// read-only mode refuses that ("Log truncate required") although serve
	// opens it with every acknowledged write. No compactors: the copy is
	// only read. Table files the MANIFEST does not list were judged by
	// verifyFiles above.
	bdb, err := badger.Open(badgerOptions(shadow, Options{}, logger).WithNumCompactors(0))
	if err != nil {
		return rep, classifyOpenError(dir, errors.New(strings.ReplaceAll(err.Error(), shadow, dir)))
	}
	defer bdb.Close()
	// Space the files take on disk (a value log left by a crash is a
	// sparse file of its preallocated size), not Badger's Size(): a
	// metric it measures only some time after opening, 0 here.
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		switch filepath.Ext(e.Name()) {
		case ".sst":
			rep.LSMBytes += int64(allocated(fi))
		case ".vlog":
			rep.VLogBytes += int64(allocated(fi))
		}
	}
	s := &appliance.Snapshot{}
	err = bdb.View(func(txn *badger.Txn) error {
		st, err := readFormat(txn)
		if err != nil {
			return err
		}
		if err := checkFormat(dir, st); err != nil {
			return err
		}
		rep.Format, rep.Migrate, rep.FormatNote = st.format, st.from != 0 || st.format < currentFormat(), st.String()
		if st.from != 0 {
			rep.Format = st.from
		}
		if rep.Migrate {
			rep.FormatNote += fmt.Sprintf(", migrated to %d when possync serve starts", currentFormat())
		}
		it := txn.NewIterator(badger.DefaultIteratorOptions)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := loadItem(s, it.Item()); err != nil {
				return fmt.Errorf("key %x: %w", it.Item().Key(), err)
			}
		}
		return nil
	})
	if err != nil {
		return rep, classifyOpenError(dir, err)
	}
	// Badger checksums its own files, but a restored backup stream has no
	// checksums: an order whose JSON is damaged would load, then fail
	// every full sync_all of its multi-session.
	for _, o := range s.Orders {
		if !json.Valid(o.Message) {
			return rep, &OpenError{Dir: dir, Problem: ProblemDamaged,
				Err: fmt.Errorf("order %s/%d/%s: the stored order is not valid JSON", o.Key.Session.DB, o.Key.Session.ID, o.Key.UID)}
		}
	}
	rep.Sessions, rep.POS, rep.Orders, rep.Bcst = len(s.Sessions), len(s.POS), len(s.Orders), len(s.Broadcasts)
	rep.LastBusID = s.LastBusID
	return rep, nil
}
