package storage_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"possync/appliance"
)

// sink keeps benchmark results alive.
var sink *appliance.Snapshot

// BenchmarkCommitOrder commits the batch of one order update: 1 session,
// 3 POS, 1 order with a 3 KB message, 1 broadcast to 3 POS. Real files,
// SyncWrites on: the figure is dominated by fsync.
func BenchmarkCommitOrder(b *testing.B) {
	ctx := context.Background()
	db := mustOpen(b, b.TempDir())
	batch := orderBatch("00001-001-0001", 1, 3000)
	b.ReportAllocs()
	for b.Loop() {
		if err := db.Commit(ctx, batch); err != nil {
			b.Fatal(err)
		}
		batch.Broadcasts[0].FirstID += 3
	}
}

// BenchmarkCommitOrderParallel is BenchmarkCommitOrder from 8 goroutines
// per CPU, each on its own order: Badger groups concurrent commits into
// one write and one fsync, so ns/op falls below the sequential figure.
func BenchmarkCommitOrderParallel(b *testing.B) {
	ctx := context.Background()
	db := mustOpen(b, b.TempDir())
	var ids, workers atomic.Uint64
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		batch := orderBatch(fmt.Sprint(workers.Add(1)), 1, 3000)
		for pb.Next() {
			batch.Broadcasts[0].FirstID = ids.Add(3) - 2
			if err := db.Commit(ctx, batch); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkLoad reads a store of 1000 orders of 3 KB and 1000 broadcasts,
// as at start-up.
func BenchmarkLoad(b *testing.B) {
	ctx := context.Background()
	db := mustOpen(b, b.TempDir())
	for i := range 1000 {
		if err := db.Commit(ctx, orderBatch(fmt.Sprint(i), uint64(3*i+1), 3000)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		s, err := db.Load(ctx)
		if err != nil {
			b.Fatal(err)
		}
		sink = s
	}
}
