package storage

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// Options configures Open. The zero value is ready to use.
type Options struct {
	// Logger receives the store's and Badger's logs, with
	// component=storage. Nil means slog.Default().
	Logger *slog.Logger
	// CacheMiB is the size of Badger's block cache in MiB. 0 means 16.
	CacheMiB int
	// GCInterval is the period of value-log GC. 0 turns the loop off.
	GCInterval time.Duration
	// ReserveBytes is the free space Commit keeps on the data file
	// system (see space.go). 0 means automatic: an eighth of the file
	// system, between 4 MiB and 128 MiB. It is capped at half the file
	// system, with a warning.
	ReserveBytes uint64
	// InMemory keeps everything in RAM and ignores dir. For tests only:
	// nothing survives Close.
	InMemory bool
}

// DefaultCacheMiB is the block cache size used when Options.CacheMiB is 0.
const DefaultCacheMiB = 16

// badgerOptions returns Badger options sized for a 1 GB Raspberry Pi
// rather than Badger's server defaults (64 MiB memtables ×5, 256 MiB block
// cache, 1 GiB value-log files). The Sync Server writes a few small
// batches per second at most; the aim is bounded RSS and durability, not
// throughput.
func badgerOptions(dir string, opts Options, logger *slog.Logger) badger.Options {
	cache := opts.CacheMiB
	if cache == 0 {
		cache = DefaultCacheMiB
	}
	o := badger.DefaultOptions(dir).
		// Acknowledged writes must survive a pulled plug. The v4 default
		// is false; true fsyncs the WAL and value log once per group of
		// concurrent commits.
		WithSyncWrites(true).
		// Each memtable preallocates an arena of about 1.3× its size, and
		// its WAL is mmapped at twice its size. 8 MiB ×2 (one being
		// written, one being flushed) caps that at ~20 MiB of RAM. The
		// largest transaction Badger accepts is 15% of a memtable, 1.2 MiB,
		// counting only keys and small values: large values go to the
		// value log (ValueThreshold), so that is thousands of records.
		WithMemTableSize(8 << 20).
		WithNumMemtables(2).
		// Blocks of SSTs are Snappy-compressed, so reads go through the
		// block cache; a few MiB holds the hot set of a small store.
		WithBlockCacheSize(int64(cache) << 20).
		// Bound the memory held by table indexes and bloom filters
		// instead of keeping all of them resident (IndexCacheSize 0).
		WithIndexCacheSize(8 << 20).
		// Value-log files are mmapped at twice their size and GC rewrites
		// a whole file at a time; 64 MiB keeps both cheap on an SD card.
		WithValueLogFileSize(64 << 20).
		// Order JSON (typically 1-10 KiB) goes to the value log, so the
		// LSM tree stays small, compactions move only keys and pointers,
		// and more of it fits the caches. Sessions, POS rows and most
		// broadcasts stay inline.
		WithValueThreshold(1 << 10).
		// Small SSTs and a small base level suit a store of tens of MiB.
		WithBaseTableSize(2 << 20).
		WithBaseLevelSize(8 << 20).
		// Compact level 0 early and stall writers before many L0 tables
		// (each with its index and bloom filter) pile up in RAM.
		WithNumLevelZeroTables(3).
		WithNumLevelZeroTablesStall(6).
		// Badger's minimum: compactor 0 serves L0, the other the rest.
		// The Pi has four cores, and the HTTP server needs them.
		WithNumCompactors(2).
		// Snappy is cheap on ARM and shrinks JSON severalfold.
		WithCompression(options.Snappy).
		// Commit never reads inside its transaction (see Commit), so
		// there is nothing to detect; tracking written keys per
		// transaction would only cost memory.
		WithDetectConflicts(false).
		// Nobody scrapes Badger's expvar metrics on the appliance.
		WithMetricsEnabled(false).
		WithLogger(badgerLogger{logger})
	if opts.InMemory {
		// Without a value log every value stays in the memtable, and
		// Badger rejects values above ValueThreshold: raise it to its
		// maximum, 1 MiB.
		o = o.WithDir("").WithValueDir("").WithInMemory(true).WithValueThreshold(1 << 20)
	}
	return o
}

// badgerLogger sends Badger's logs to slog. Badger's Infof is chatty
// (every flush and compaction), so it goes to Debug; its Debugf goes one
// level lower still.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(format string, args ...any) {
	b.log(slog.LevelError, format, args)
}

func (b badgerLogger) Warningf(format string, args ...any) {
	b.log(slog.LevelWarn, format, args)
}

func (b badgerLogger) Infof(format string, args ...any) {
	b.log(slog.LevelDebug, format, args)
}

func (b badgerLogger) Debugf(format string, args ...any) {
	b.log(slog.LevelDebug-4, format, args)
}

func (b badgerLogger) log(level slog.Level, format string, args []any) {
	ctx := context.Background()
	if !b.l.Enabled(ctx, level) {
		return
	}
	b.l.Log(ctx, level, strings.TrimSpace(fmt.Sprintf(format, args...)), "lib", "badger")
}
