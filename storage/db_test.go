package storage_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"possync/appliance"
	"possync/storage"
	"possync/storage/storagetest"
)

func TestConformanceInMemory(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, dir string) appliance.Store {
		db, err := storage.Open("", storage.Options{InMemory: true, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatalf("Open(in memory) = %v", err)
		}
		return db
	})
}

// orderBatch is one batch of a typical write: an order with a message of
// msgSize bytes and a broadcast of 3 notifications from first.
func orderBatch(uid string, first uint64, msgSize int) *appliance.Batch {
	msg := fmt.Appendf(nil, `{"uid":%q,"pad":"%s"}`, uid, strings.Repeat("x", msgSize))
	return &appliance.Batch{
		Sessions: []appliance.SessionRecord{{Key: appliance.SessionKey{DB: "odoo", ID: 1}, OrderID: 12, RunID: 1}},
		POS: []appliance.POSRecord{
			{Key: appliance.POSKey{DB: "odoo", ID: 1}, Session: 1, MessageID: int64(first), UserID: 2},
			{Key: appliance.POSKey{DB: "odoo", ID: 2}, Session: 1, MessageID: int64(first), UserID: 2},
			{Key: appliance.POSKey{DB: "odoo", ID: 3}, Session: 1, MessageID: int64(first), UserID: 2},
		},
		Orders: []appliance.OrderRecord{{
			Key:      appliance.OrderKey{Session: appliance.SessionKey{DB: "odoo", ID: 1}, UID: uid},
			Revision: 1, Nonce: `"abc"`, State: appliance.StateDraft, Run: 1, Updated: time.Now(), Message: msg,
		}},
		Broadcasts: []appliance.Broadcast{{
			FirstID: first, At: time.Now(), Templated: true,
			Prefix: []byte(`{"action":"update_order","message_ID":`), Suffix: append(append([]byte(`,"data":`), msg...), '}'),
			Targets: []appliance.Target{
				{Channel: `["odoo","pos.multi_session",1]`, MessageID: int64(first)},
				{Channel: `["odoo","pos.multi_session",2]`, MessageID: int64(first) + 1},
				{Channel: `["odoo","pos.multi_session",3]`, MessageID: int64(first) + 2},
			},
		}},
	}
}

// TestOpenAfterCrash copies the files of a store that is still open, as a
// power cut would leave them, and opens the copy: Badger must replay its
// write-ahead log and find the acknowledged order.
func TestOpenAfterCrash(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := mustOpen(t, dir)
	b := orderBatch("00001-001-0001", 1, 3000)
	if err := db.Commit(ctx, b); err != nil {
		t.Fatalf("Commit() = %v", err)
	}

	crashed := t.TempDir()
	copyDir(t, dir, crashed)
	// The lock is a flock on the directory, which a copy does not
	// inherit; the pid file it leaves behind is harmless.
	copy := mustOpen(t, crashed)
	got, err := copy.Order(ctx, b.Orders[0].Key)
	if err != nil {
		t.Fatalf("Order() after crash = %v", err)
	}
	if !bytes.Equal(got.Message, b.Orders[0].Message) {
		t.Errorf("Order() after crash: message %.40q…, want %.40q…", got.Message, b.Orders[0].Message)
	}
	snap, err := copy.Load(ctx)
	if err != nil {
		t.Fatalf("Load() after crash = %v", err)
	}
	if snap.LastBusID != 3 || len(snap.Broadcasts) != 1 || len(snap.POS) != 3 {
		t.Errorf("Load() after crash: LastBusID %d, %d broadcasts, %d POS; want 3, 1, 3",
			snap.LastBusID, len(snap.Broadcasts), len(snap.POS))
	}
}

// copyDir copies the regular files of src to dst, keeping holes: Badger's
// mmapped files are sparse and mostly empty.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	zero := make([]byte, 64<<10)
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		in, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.Create(filepath.Join(dst, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off < len(in); off += len(zero) {
			chunk := in[off:min(off+len(zero), len(in))]
			if bytes.Equal(chunk, zero[:len(chunk)]) {
				continue
			}
			if _, err := out.WriteAt(chunk, int64(off)); err != nil {
				t.Fatal(err)
			}
		}
		if err := out.Truncate(int64(len(in))); err != nil {
			t.Fatal(err)
		}
		if err := out.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCommitTooBig(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t, t.TempDir())
	// 2000 orders of 900 bytes, under the value threshold so they are
	// counted whole: above the 1.2 MiB a transaction may hold.
	b := &appliance.Batch{}
	for i := range 2000 {
		b.Orders = append(b.Orders, orderBatch(fmt.Sprint(i), 1, 850).Orders[0])
	}
	b.Broadcasts = orderBatch("x", 1, 10).Broadcasts
	err := db.Commit(ctx, b)
	if appliance.ErrorCode(err) != appliance.EUNAVAILABLE || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("Commit(2000 orders) = %v, want EUNAVAILABLE too large", err)
	}
	snap, err := db.Load(ctx)
	if err != nil {
		t.Fatalf("Load() = %v", err)
	}
	if len(snap.Orders) != 0 || snap.LastBusID != 0 {
		t.Errorf("Load() after refused commit: %d orders, LastBusID %d; want nothing applied", len(snap.Orders), snap.LastBusID)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	mustOpen(t, dir)
	if _, err := storage.Open(dir, storage.Options{Logger: slog.New(slog.DiscardHandler)}); err == nil ||
		!strings.HasPrefix(err.Error(), "store "+dir+" cannot be opened (in use): ") {
		t.Errorf("Open(%q) while open = %v, want an error naming the dir and saying it is in use", dir, err)
	}
	if _, err := storage.Open(t.TempDir(), storage.Options{CacheMiB: -1}); err == nil {
		t.Errorf("Open(CacheMiB: -1) = nil, want an error")
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := storage.Open(file, storage.Options{Logger: slog.New(slog.DiscardHandler)}); err == nil {
		t.Errorf("Open(%q) on a file = nil, want an error", file)
	}
}

// recorder is a slog.Handler that keeps records.
type recorder struct {
	mu      sync.Mutex
	records []slog.Record
	attrs   []slog.Attr
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) WithGroup(string) slog.Handler            { return r }
func (r *recorder) WithAttrs(as []slog.Attr) slog.Handler {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attrs = append(r.attrs, as...)
	return r
}

func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec)
	return nil
}

// TestLogging checks that Badger's logs reach slog at Debug, and that the
// logger carries component=storage.
func TestLogging(t *testing.T) {
	rec := &recorder{}
	db, err := storage.Open(t.TempDir(), storage.Options{Logger: slog.New(rec)})
	if err != nil {
		t.Fatalf("Open() = %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if !slicesContainsAttr(rec.attrs, "component", "storage") {
		t.Errorf("logger attrs = %v, want component=storage", rec.attrs)
	}
	var badgerLevels, messages []string
	for _, r := range rec.records {
		messages = append(messages, r.Message)
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "lib" && a.Value.String() == "badger" {
				badgerLevels = append(badgerLevels, r.Level.String())
				if strings.HasSuffix(r.Message, "\n") {
					t.Errorf("badger message %q ends in a newline", r.Message)
				}
			}
			return true
		})
	}
	if len(badgerLevels) == 0 || badgerLevels[0] != slog.LevelDebug.String() {
		t.Errorf("badger log levels = %v, want Debug first (Infof → Debug)", badgerLevels)
	}
	if !strings.Contains(strings.Join(messages, "|"), "store opened") {
		t.Errorf("messages = %q, want \"store opened\"", messages)
	}
}

func slicesContainsAttr(as []slog.Attr, key, value string) bool {
	for _, a := range as {
		if a.Key == key && a.Value.String() == value {
			return true
		}
	}
	return false
}

// TestGCLoop runs value-log GC every few milliseconds while orders with
// large messages are rewritten, then checks that Close stops the loop and
// the data is intact.
func TestGCLoop(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := storage.Open(dir, storage.Options{GCInterval: 5 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("Open() = %v", err)
	}
	defer db.Close()
	var last *appliance.Batch
	for i := range 200 {
		last = orderBatch(fmt.Sprint(i%10), uint64(3*i+1), 20<<10)
		if err := db.Commit(ctx, last); err != nil {
			t.Fatalf("Commit() = %v", err)
		}
	}
	st, err := db.Stats()
	if err != nil || st.LSMBytes < 0 || st.VLogBytes < 0 {
		t.Errorf("Stats() = %+v, %v", st, err)
	}
	if st.DirBytes < 200<<10 || st.FreeBytes == 0 || st.TotalBytes < st.FreeBytes {
		t.Errorf("Stats() = %+v: want the data files' size (≥ 200 KiB written) and the file system's free and total bytes", st)
	}
	for deadline := time.Now().Add(10 * time.Second); st.GCRuns == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		st, _ = db.Stats()
	}
	if st.GCRuns == 0 {
		t.Errorf("Stats().GCRuns = 0 after the GC loop ran every 5 ms")
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if _, err := db.Stats(); !errors.Is(err, appliance.ErrClosed) {
		t.Errorf("Stats() after Close = %v, want ErrClosed", err)
	}
	db2 := mustOpen(t, dir)
	got, err := db2.Order(ctx, last.Orders[0].Key)
	if err != nil || !bytes.Equal(got.Message, last.Orders[0].Message) {
		t.Errorf("Order() after GC and reopen = %.40q, %v; want the last message", got.Message, err)
	}
}
