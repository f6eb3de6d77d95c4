package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dgraph-io/badger/v4"

	"possync/appliance"
)

var _ appliance.Store = (*DB)(nil)

// DB is an appliance.Store backed by Badger. Its methods are safe for
// concurrent use.
type DB struct {
	bdb    *badger.DB
	logger *slog.Logger
	dir    string

	// freeBytes measures the free space of dir's file system; nil for
	// an in-memory store. Tests replace it.
	freeBytes func(dir string) (uint64, error)
	// fsInfo measures dir's file system for Health; nil for an in-memory
	// store. Tests replace it.
	fsInfo func(dir string) (fsInfo, error)
	// reserve is the free space Commit keeps (space.go), chosen at Open.
	reserve uint64

	stop       chan struct{}  // closed by Close to end the GC loop
	gc         sync.WaitGroup // the GC loop
	gcRuns     atomic.Uint64  // GC passes
	gcRewrites atomic.Uint64  // value-log files rewritten

	// closeMu guards closed. Every method holds it for reading while it
	// uses bdb; Close holds it for writing.
	closeMu sync.RWMutex
	closed  bool

	// lastBus is the last value written to last_bus_id: set by Open,
	// then only by the committer's one writer at a time (group.go).
	lastBus uint64

	commits committer // the commit queue (group.go)
}

// Open opens or creates the store in dir. The caller must Close it.
func Open(dir string, opts Options) (*DB, error) {
	if opts.CacheMiB < 0 {
		return nil, fmt.Errorf("open store %s: negative cache size %d MiB", dir, opts.CacheMiB)
	}
	if opts.GCInterval < 0 {
		return nil, fmt.Errorf("open store %s: negative GC interval %v", dir, opts.GCInterval)
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("component", "storage")

	if !opts.InMemory {
		if err := verifyDir(dir); err != nil {
			return nil, err
		}
		if err := refuseNewerFormat(dir, opts, logger); err != nil {
			return nil, classifyOpenError(dir, err)
		}
	}
	bdb, err := badger.Open(badgerOptions(dir, opts, logger))
	if err != nil {
		return nil, classifyOpenError(dir, err)
	}
	db := &DB{bdb: bdb, logger: logger, dir: dir, stop: make(chan struct{})}
	if !opts.InMemory {
		db.freeBytes = statfsFree
		db.fsInfo = statfsInfo
	}
	var total uint64
	if _, t, err := statfsUsage(dir); err == nil && !opts.InMemory {
		total = t
	}
	reserve, warning := chooseReserve(opts.ReserveBytes, total)
	if warning != "" {
		logger.Warn(warning)
	}
	db.reserve = reserve
	if err := db.init(opts.InMemory); err != nil {
		bdb.Close()
		return nil, classifyOpenError(dir, err)
	}
	if opts.GCInterval > 0 && !opts.InMemory {
		db.gc.Add(1)
		go db.gcLoop(opts.GCInterval)
	}
	lsm, vlog := bdb.Size()
	logger.Info("store opened", "dir", dir, "format", currentFormat(), "last_bus_id", db.lastBus, "reserve_bytes", db.reserve, "lsm_bytes", lsm, "vlog_bytes", vlog)
	return db, nil
}

// init brings the store to the current data format (format.go) and
// reads last_bus_id.
func (db *DB) init(inMemory bool) error {
	if err := db.ensureFormat(inMemory); err != nil {
		return err
	}
	return db.bdb.View(func(txn *badger.Txn) error {
		var err error
		db.lastBus, err = readLastBus(txn)
		return err
	})
}

// readLastBus returns the value of the last_bus_id key, 0 if absent.
func readLastBus(txn *badger.Txn) (uint64, error) {
	item, err := txn.Get(keyLastBusID)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var id uint64
	err = item.Value(func(v []byte) error {
		id, err = decodeLastBus(v)
		return err
	})
	return id, err
}

// decodeLastBus decodes the value of the last_bus_id key.
func decodeLastBus(v []byte) (uint64, error) {
	if len(v) != 8 {
		return 0, fmt.Errorf("last_bus_id: %w", errBadValue)
	}
	return binary.BigEndian.Uint64(v), nil
}

// Close waits for running calls and for a running value-log GC pass to
// finish, then closes Badger, which flushes its memtables. It is safe to
// call more than once; later calls return nil. Calls of other
// methods after Close fail with an error wrapping appliance.ErrClosed.
func (db *DB) Close() error {
	db.closeMu.Lock()
	defer db.closeMu.Unlock()
	if db.closed {
		return nil
	}
	db.closed = true
	close(db.stop)
	db.gc.Wait()
	if err := db.closeBadger(); err != nil {
		return fmt.Errorf("close store %s: %w", db.dir, err)
	}
	db.logger.Info("store closed", "dir", db.dir)
	return nil
}

// readOnlyCloseChecks is how many checks, a second apart, must find the
// data file system read-only before Close stops waiting for Badger.
const readOnlyCloseChecks = 3

// closeBadger closes Badger. On a file system that turned read-only
// (ext4 after a card error) Badger's Close retries flushing its memtable
// for ever, and `serve` would never exit on SIGTERM: once the file system
// has been seen read-only for readOnlyCloseChecks seconds, closeBadger
// stops waiting and says so. Nothing acknowledged is lost: every write is
// in the synced write-ahead log, which the next open replays.
func (db *DB) closeBadger() error {
	done := make(chan error, 1)
	go func() { done <- db.bdb.Close() }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	readOnly := 0
	for {
		select {
		case err := <-done:
			return err
		case <-tick.C:
			if db.fsInfo == nil {
				continue
			}
			if fs, err := db.fsInfo(db.dir); err == nil && fs.readOnly {
				readOnly++
			} else {
				readOnly = 0
			}
			if readOnly >= readOnlyCloseChecks {
				return fmt.Errorf("data file system is read-only: the last writes cannot be flushed into tables; "+
					"stopped waiting (they are in the synced write-ahead log, which the next start replays): %w", syscall.EROFS)
			}
		}
	}
}

// use takes closeMu for reading and reports ErrClosed if the store is
// closed. On success the caller must call db.closeMu.RUnlock.
func (db *DB) use(op string) error {
	db.closeMu.RLock()
	if db.closed {
		db.closeMu.RUnlock()
		return fmt.Errorf("%s: store %s: %w", op, db.dir, appliance.ErrClosed)
	}
	return nil
}

// Stats are the store's sizes, its value-log GC counters and the space on
// its file system. LSMBytes and VLogBytes are as last measured by Badger
// (it refreshes them about once a minute); DirBytes is measured now.
type Stats struct {
	LSMBytes   int64  // SST files: keys, small values, value pointers
	VLogBytes  int64  // value-log files: large values (order messages)
	DirBytes   uint64 // disk space the data directory's files take now (0 = not measured)
	GCRuns     uint64 // value-log GC passes since Open
	GCRewrites uint64 // value-log files rewritten by GC since Open
	FreeBytes  uint64 // available on the data file system (0 = not measured)
	TotalBytes uint64 // size of the data file system (0 = not measured)
	// Transactions counts the Badger transactions committed since Open:
	// one per group of commits that overlapped (group.go), each synced
	// once. Commits counts the batches made durable in them, so
	// Commits/Transactions is the mean group size.
	Transactions uint64
	Commits      uint64
}

// Stats returns the store's sizes.
func (db *DB) Stats() (Stats, error) {
	if err := db.use("stats"); err != nil {
		return Stats{}, err
	}
	defer db.closeMu.RUnlock()
	lsm, vlog := db.bdb.Size()
	st := Stats{LSMBytes: lsm, VLogBytes: vlog, GCRuns: db.gcRuns.Load(), GCRewrites: db.gcRewrites.Load()}
	db.commits.mu.Lock()
	st.Transactions, st.Commits = db.commits.stats.groups, db.commits.stats.batches
	db.commits.mu.Unlock()
	st.DirBytes = dirBytes(db.dir)
	if free, total, err := statfsUsage(db.dir); err == nil {
		st.FreeBytes, st.TotalBytes = free, total
	}
	return st, nil
}

// gcLoop runs value-log GC every interval until Close.
func (db *DB) gcLoop(interval time.Duration) {
	defer db.gc.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-db.stop:
			return
		case <-t.C:
			db.runGC()
		}
	}
}

// runGC rewrites value-log files while at least half of one is garbage.
func (db *DB) runGC() {
	db.gcRuns.Add(1)
	start := time.Now()
	n := 0
	for {
		select {
		case <-db.stop:
			return
		default:
		}
		err := db.bdb.RunValueLogGC(0.5)
		if err == nil {
			n++
			db.gcRewrites.Add(1)
			continue
		}
		if !errors.Is(err, badger.ErrNoRewrite) && !errors.Is(err, badger.ErrRejected) {
			db.logger.Warn("value log gc", "err", err)
		}
		break
	}
	db.logger.Debug("value log gc", "files_rewritten", n, "duration", time.Since(start))
}
