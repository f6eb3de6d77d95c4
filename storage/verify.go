package storage

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/dgraph-io/badger/v4/table"
	"github.com/dgraph-io/badger/v4/y"
	"github.com/dgraph-io/ristretto/v2/z"
)

// Badger opens its table files in goroutines of its own and panics there
// on a truncated one (table.initBiggestAndSmallest), which no caller can
// recover: the process dies with a Go panic (exit 2) instead of saying
// which file is broken, and systemd restarts it into the same panic. A
// MANIFEST cut short, on the other hand, opens "fine": Badger deletes the
// table files it no longer lists and serves an empty store.
//
// So Open first reads the MANIFEST and every table file itself, read-only
// and in its own goroutine (where a panic can be recovered), and refuses
// with an *OpenError naming the file before Badger touches anything.

// verifyFiles checks the store files in dir before Badger opens them:
//   - the MANIFEST replays (bad magic, checksum mismatch or a newer
//     Badger format are errors; a torn last record is not: Badger drops
//     it, as after a power cut during a MANIFEST write);
//   - every table it lists is there, and every table file opens and
//     passes its block checksums;
//   - every value a table points to is whole in its value-log file
//     (verify_vlog.go);
//   - table files the MANIFEST does not list (Badger deletes them at
//     open) hold nothing the listed tables lack, or are the newest
//     table of a memtable flush cut short (its WAL, a .mem file, is
//     still there and is replayed); anything else means the MANIFEST
//     lost records and opening would lose acknowledged data.
//
// A directory without store files passes. It never writes to dir.
func verifyFiles(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // Badger creates it
	}
	if err != nil {
		return classifyOpenError(dir, err)
	}
	var ssts []uint64
	var vlogs []string
	var mems int
	var foreign []string
	manifest := false
	for _, e := range entries {
		name := e.Name()
		if e.Type().IsRegular() && !isStoreFile(name) {
			foreign = append(foreign, name)
		}
		switch {
		case !e.Type().IsRegular():
		case name == "MANIFEST":
			manifest = true
		case strings.HasSuffix(name, ".sst"):
			if id, ok := table.ParseFileID(name); ok {
				ssts = append(ssts, id)
			}
		case strings.HasSuffix(name, ".vlog"):
			vlogs = append(vlogs, name)
		case strings.HasSuffix(name, ".mem"):
			mems++
		}
	}
	if !manifest {
		if len(ssts) > 0 || len(vlogs) > 0 {
			return &OpenError{Dir: dir, File: "MANIFEST", Problem: ProblemDamaged, Err: fmt.Errorf(
				"missing, but %d table files and %d value-log files are there: opening would start an empty store", len(ssts), len(vlogs))}
		}
		if len(foreign) > 0 {
			if len(foreign) > 3 {
				foreign = append(foreign[:3], "…")
			}
			return &OpenError{Dir: dir, File: dir, Problem: ProblemNotAStore, Err: fmt.Errorf(
				"holds %d files that are not a store's (%s) and no store: possync starts a new store only in an empty directory",
				len(foreign), strings.Join(foreign, ", "))}
		}
		return nil
	}
	mf, err := readManifest(dir)
	if err != nil {
		return err
	}
	slices.Sort(ssts)
	for id := range mf.Tables {
		if _, found := slices.BinarySearch(ssts, id); !found {
			return &OpenError{Dir: dir, File: table.IDToFilename(id), Problem: ProblemDamaged,
				Err: errors.New("listed in the MANIFEST but missing")}
		}
	}

	listed := make([]*table.Table, 0, len(mf.Tables))
	defer func() {
		for _, t := range listed {
			_ = t.Close(-1) // -1: never truncate
		}
	}()
	var unlisted []uint64
	var maxListed uint64
	for _, id := range ssts {
		tm, ok := mf.Tables[id]
		if !ok {
			unlisted = append(unlisted, id)
			continue
		}
		t, err := openTable(dir, id, tm.Compression)
		if err != nil {
			return err
		}
		listed = append(listed, t)
		maxListed = max(maxListed, id)
	}
	files, err := readVlogs(dir, vlogs)
	if err != nil {
		return err
	}
	defer closeVlogs(files)
	var newest uint32
	for fid := range files {
		newest = max(newest, fid)
	}
	for _, t := range listed {
		if err := checkPointers(dir, t, files, newest); err != nil {
			return err
		}
	}
	var lost []string
	for _, id := range unlisted {
		t, err := openTable(dir, id, options.Snappy)
		var oe *OpenError
		if errors.As(err, &oe) && oe.Problem == ProblemDamaged {
			// A table whose write a crash interrupted: Badger syncs a
			// table whole before the MANIFEST lists it, so an unlisted,
			// unreadable one never held anything acknowledged (its data is
			// in the WAL or in the compaction's listed inputs); Badger
			// deletes it at open.
			continue
		}
		if err != nil {
			return err
		}
		// A table older than a listed one (table ids only grow) is the
		// input of a compaction whose MANIFEST record is complete: the
		// MANIFEST went on to record later tables, so it was not cut
		// before this one; Badger deletes it at open. Its obsolete
		// versions and tombstones are why it need not be covered (found
		// by the kill -9 test). A cut MANIFEST loses the newest records:
		// tables above every listed one, checked below.
		if id < maxListed {
			_ = t.Close(-1)
			continue
		}
		covered := coveredBy(t, listed)
		_ = t.Close(-1)
		if !covered && !(id > maxListed && mems > 0) {
			lost = append(lost, table.IDToFilename(id))
		}
	}
	if len(lost) > 0 {
		return &OpenError{Dir: dir, File: "MANIFEST", Problem: ProblemDamaged, Err: fmt.Errorf(
			"does not list %s (%d of %d table files), which hold data the listed tables lack, and opening would delete them: "+
				"the MANIFEST is damaged or cut short; keep a copy of the directory", strings.Join(lost, ", "), len(lost), len(ssts))}
	}
	return nil
}

// readManifest replays dir's MANIFEST read-only.
func readManifest(dir string) (badger.Manifest, error) {
	f, err := os.Open(filepath.Join(dir, "MANIFEST"))
	if err != nil {
		return badger.Manifest{}, classifyOpenError(dir, fmt.Errorf("MANIFEST: %w", err))
	}
	defer f.Close()
	mf, _, err := badger.ReplayManifestFile(f, 0, badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		e := classifyOpenError(dir, err)
		e.File = "MANIFEST"
		return badger.Manifest{}, e
	}
	return mf, nil
}

// openTable opens table file id of dir read-only and verifies the
// checksums of all its blocks. The caller closes it with Close(-1) (never
// DecrRef, which deletes the file).
func openTable(dir string, id uint64, comp options.CompressionType) (t *table.Table, err error) {
	name := table.IDToFilename(id)
	fail := func(err error) *OpenError {
		e := classifyOpenError(dir, err)
		e.File = name
		if e.Problem == ProblemMissing {
			e.Problem = ProblemDamaged
		}
		return e
	}
	mf, err := z.OpenMmapFile(filepath.Join(dir, name), os.O_RDONLY, 0)
	if err != nil {
		return nil, fail(fmt.Errorf("table file cannot be read: %w", err))
	}
	defer func() {
		if r := recover(); r != nil {
			_ = mf.Close(-1)
			why, _, _ := strings.Cut(strings.TrimSpace(fmt.Sprint(r)), "\n")
			if strings.Contains(why, "initIndex crash") { // Badger's own re-panic, its detail on later lines
				why = "its index cannot be read"
			}
			t, err = nil, fail(fmt.Errorf("table file is truncated or corrupt (%s)", why))
		}
	}()
	t, err = table.OpenTable(mf, table.Options{
		ReadOnly:    true,
		BlockSize:   4 << 10, // Badger's default; only a size hint when reading
		Compression: comp,
		ChkMode:     options.OnTableRead,
	})
	if err != nil {
		return nil, fail(fmt.Errorf("table file is truncated or corrupt: %w", err))
	}
	return t, nil
}

// coveredBy reports whether every entry (key and version) of t is also in
// one of tables, as for the output of a compaction cut short: its inputs
// are still listed.
func coveredBy(t *table.Table, tables []*table.Table) bool {
	its := make([]*table.Iterator, len(tables))
	for i, lt := range tables {
		its[i] = lt.NewIterator(table.NOCACHE)
		defer its[i].Close()
	}
	it := t.NewIterator(table.NOCACHE)
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		k := it.Key()
		found := false
		for i, lt := range tables {
			if y.CompareKeys(k, lt.Smallest()) < 0 || y.CompareKeys(k, lt.Biggest()) > 0 {
				continue
			}
			its[i].Seek(k)
			if its[i].Valid() && bytes.Equal(its[i].Key(), k) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// verifyDir runs verifyFiles under Badger's directory lock, so a store
// another process is writing is reported as in use, not as damaged.
func verifyDir(dir string) error {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return classifyOpenError(dir, err)
	}
	defer unlock()
	return verifyFiles(dir)
}

// isStoreFile reports whether a regular file of a data directory is one
// Badger or possync writes there.
func isStoreFile(name string) bool {
	switch name {
	case "MANIFEST", "KEYREGISTRY", "DISCARD", "LOCK", "MANIFEST-REWRITE":
		return true
	case "box-id": // discovery.BoxIDFile: the box id when there is no machine id
		return true
	}
	for _, suffix := range []string{".sst", ".vlog", ".mem", ".tmp", ".backup", ".backup.tmp"} {
		if strings.HasSuffix(name, suffix) {
			return true
		}
	}
	return false
}
