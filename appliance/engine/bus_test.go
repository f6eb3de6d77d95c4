package engine

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"possync/appliance"
)

func bcast(ch string, body string) *appliance.Broadcast {
	return &appliance.Broadcast{At: time.Now(), Prefix: []byte(body), Targets: []appliance.Target{{Channel: ch}}}
}

func TestBusPublishesInIDOrder(t *testing.T) {
	b := newBus(0, nil)
	ra := b.reserve(1) // id 1, committed later
	rb := b.reserve(1) // id 2, committed first
	if ra.first != 1 || rb.first != 2 {
		t.Fatalf("reserve ids = %d, %d, want 1, 2", ra.first, rb.first)
	}
	bb := bcast("c", `"b"`)
	bb.FirstID = 2
	b.finish(rb, []*appliance.Broadcast{bb})

	got := b.Poll(context.Background(), PollRequest{Channels: []string{"c"}, Last: 0, Hold: 10 * time.Millisecond, Replay: time.Minute})
	if len(got) != 0 {
		t.Fatalf("Poll before id 1 committed = %d notifications, want 0 (id 2 must wait for id 1)", len(got))
	}
	ba := bcast("c", `"a"`)
	ba.FirstID = 1
	b.finish(ra, []*appliance.Broadcast{ba})
	got = b.Poll(context.Background(), PollRequest{Channels: []string{"c"}, Last: 0, Hold: time.Second, Replay: time.Minute})
	if len(got) != 2 || got[0].ID != 1 || got[1].ID != 2 {
		t.Fatalf("Poll = %+v, want ids 1, 2", got)
	}
	if b.Newest() != 2 {
		t.Errorf("Newest() = %d, want 2", b.Newest())
	}
}

func TestBusAbortDoesNotBlock(t *testing.T) {
	b := newBus(10, nil)
	ra := b.reserve(2) // 11, 12 aborted
	rb := b.reserve(1) // 13
	bb := bcast("c", "1")
	bb.FirstID = 13
	b.finish(rb, []*appliance.Broadcast{bb})
	b.finish(ra, nil)
	got := b.Poll(context.Background(), PollRequest{Channels: []string{"c"}, Last: 10, Hold: time.Second})
	if len(got) != 1 || got[0].ID != 13 {
		t.Fatalf("Poll = %+v, want id 13", got)
	}
}

func TestBusPollWakesOnPublish(t *testing.T) {
	b := newBus(0, nil)
	done := make(chan []Notification)
	go func() {
		done <- b.Poll(context.Background(), PollRequest{Channels: []string{"x", "c"}, Last: 0, Hold: 10 * time.Second, Replay: time.Minute})
	}()
	// Wait until the poll is registered.
	for deadline := time.Now().Add(5 * time.Second); b.stats().Waiting == 0; {
		if time.Now().After(deadline) {
			t.Fatal("poll never started waiting")
		}
		time.Sleep(time.Millisecond)
	}
	// A notification on another channel must not wake it with a result.
	r := b.reserve(1)
	o := bcast("other", "0")
	o.FirstID = r.first
	b.finish(r, []*appliance.Broadcast{o})
	r = b.reserve(1)
	c := bcast("c", `"PONG"`)
	c.FirstID = r.first
	start := time.Now()
	b.finish(r, []*appliance.Broadcast{c})
	select {
	case got := <-done:
		if len(got) != 1 || got[0].Channel != "c" || string(got[0].AppendMessage(nil)) != `"PONG"` {
			t.Fatalf("Poll = %+v, want the PONG on c", got)
		}
		t.Logf("wake latency %v", time.Since(start))
	case <-time.After(5 * time.Second):
		t.Fatal("poll did not wake on publish")
	}
}

func TestBusPollTimesOutEmpty(t *testing.T) {
	b := newBus(5, nil)
	start := time.Now()
	got := b.Poll(context.Background(), PollRequest{Channels: []string{"c"}, Last: 5, Hold: 50 * time.Millisecond})
	if len(got) != 0 {
		t.Fatalf("Poll = %v, want empty", got)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("Poll returned after %v, before the hold", d)
	}
	if st := b.stats(); st.Waiting != 0 {
		t.Errorf("waiting = %d after the poll returned", st.Waiting)
	}
}

// fakeClock is an injected engine clock (no monotonic reading).
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *fakeClock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

func publish(b *Bus, ch, body string) uint64 {
	r := b.reserve(1)
	bc := bcast(ch, body)
	bc.FirstID = r.first
	b.finish(r, []*appliance.Broadcast{bc})
	return r.first
}

// Last = 0 replays this run's recent notifications; a cursor above every
// id (another bus's, §9.3-1) replays nothing: it counts as the newest id.
func TestBusReplayAndBeyondNewest(t *testing.T) {
	clock := newFakeClock()
	b := newBus(0, clock.Now)
	publish(b, "c", "1")
	clock.Advance(2 * time.Minute)
	publish(b, "c", "2")
	got := b.Poll(context.Background(), PollRequest{Channels: []string{"c"}, Last: 0, Hold: time.Second, Replay: 50 * time.Second})
	if len(got) != 1 || got[0].ID != 2 {
		t.Errorf("Poll(last=0) = %+v, want only id 2 (replay window)", got)
	}
	for _, last := range []uint64{3, 1 << 62, math.MaxUint64} {
		got := b.Poll(context.Background(), PollRequest{Channels: []string{"c"}, Last: last, Hold: 20 * time.Millisecond, Replay: 50 * time.Second})
		if len(got) != 0 {
			t.Errorf("Poll(last=%d) = %+v, want nothing (a cursor from the future counts as the newest id)", last, got)
		}
	}
	got = b.Poll(context.Background(), PollRequest{Channels: []string{"c"}, Last: 1, Hold: time.Second})
	if len(got) != 1 || got[0].ID != 2 {
		t.Errorf("Poll(last=1) = %+v, want id 2", got)
	}
}

// A jump reserves every id up to the client's cursor, in order with the
// reservations before it: later ids are above the cursor, and the jump's
// popped channel closes only once the ids below it are visible.
func TestBusJump(t *testing.T) {
	b := newBus(10, nil)
	inflight := b.reserve(1) // id 11, still committing
	if r, _, future := b.jump(11, MaxJumpCursor); future || r != nil {
		t.Fatalf("jump(11) with id 11 reserved = future, want an ordinary cursor")
	}
	r, after, future := b.jump(1000, MaxJumpCursor)
	if !future || r == nil || after != 10 || r.first != 12 || r.n != 989 {
		t.Fatalf("jump(1000) = %+v, %d, %v; want ids 12..1000 reserved, after 10", r, after, future)
	}
	b.finish(r, nil)
	select {
	case <-r.popped:
		t.Fatal("jump popped before the in-flight id 11 finished")
	default:
	}
	bc := bcast("c", "1")
	bc.FirstID = 11
	b.finish(inflight, []*appliance.Broadcast{bc})
	<-r.popped
	if id := publish(b, "c", "2"); id != 1001 {
		t.Errorf("first id after the jump = %d, want 1001", id)
	}
	if _, _, future := b.jump(1000, MaxJumpCursor); future {
		t.Errorf("jump(1000) after the jump is still a future cursor")
	}
	for _, last := range []uint64{MaxJumpCursor, math.MaxUint64} {
		r, after, future := b.jump(last, MaxJumpCursor)
		if !future || r != nil || after != 1001 {
			t.Errorf("jump(%d) = %v, %d, %v; want no reservation, after 1001", last, r, after, future)
		}
	}
	if st := b.stats(); st.Newest != 1001 {
		t.Errorf("newest = %d, want 1001", st.Newest)
	}
}

// Retention and replay use the bus clock's own readings, not the stored
// wall-clock times of the broadcasts.
func TestBusPruneAndClose(t *testing.T) {
	clock := newFakeClock()
	b := newBus(0, clock.Now)
	r := b.reserve(2)
	old := &appliance.Broadcast{FirstID: 1, At: clock.Now().Add(time.Hour), Prefix: []byte("1"), Targets: []appliance.Target{{Channel: "a"}, {Channel: "b"}}}
	b.finish(r, []*appliance.Broadcast{old})
	clock.Advance(time.Hour)
	publish(b, "b", "2") // id 3
	if low, _ := b.prune(time.Minute, 0); low != 3 {
		t.Errorf("prune = %d, want 3", low)
	}
	if st := b.stats(); st.Retained != 1 || st.Channels != 1 {
		t.Errorf("after prune: %+v, want 1 retained on 1 channel", st)
	}
	done := make(chan []Notification)
	go func() {
		done <- b.Poll(context.Background(), PollRequest{Channels: []string{"z"}, Last: 3, Hold: time.Minute})
	}()
	for b.stats().Waiting == 0 {
		time.Sleep(time.Millisecond)
	}
	b.close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("close did not wake the waiting poll")
	}
}

// Broadcasts stored by an earlier run are trusted only within bounds: one
// stored an hour "in the future" (the clock is now behind) is neither
// replayed to last = 0 nor kept beyond the retention from this start; one
// stored a year "ago" (the clock stepped forward) is kept restartKeep.
func TestBusLoadBoundsStoredTimes(t *testing.T) {
	clock := newFakeClock()
	now := clock.Now()
	const retention = 10 * time.Minute
	stored := []appliance.Broadcast{
		{FirstID: 1, At: now.AddDate(-1, 0, 0), Prefix: []byte("1"), Targets: []appliance.Target{{Channel: "a"}}},
		{FirstID: 2, At: now.Add(time.Hour), Prefix: []byte("2"), Targets: []appliance.Target{{Channel: "b"}}},
		{FirstID: 3, At: now.Add(-10 * time.Second), Prefix: []byte("3"), Targets: []appliance.Target{{Channel: "b"}}},
	}
	b := newBus(3, clock.Now)
	b.load(stored, retention)
	for _, ch := range []string{"a", "b"} {
		if got := b.Poll(context.Background(), PollRequest{Channels: []string{ch}, Hold: 20 * time.Millisecond, Replay: 50 * time.Second}); len(got) != 0 {
			t.Errorf("Poll(%s, last=0) after restart = %+v, want nothing (earlier run's notifications are not replayed)", ch, got)
		}
	}
	if got := b.Poll(context.Background(), PollRequest{Channels: []string{"a", "b"}, Last: 0 + 1, Hold: time.Second}); len(got) != 2 {
		t.Errorf("Poll(last=1) = %+v, want ids 2 and 3 (retained for reconnecting cursors)", got)
	}
	clock.Advance(restartKeep - time.Second)
	b.prune(retention, 0)
	if st := b.stats(); st.Retained != 3 {
		t.Errorf("retained %d just before restartKeep, want 3 (a forward clock step must not purge early)", st.Retained)
	}
	clock.Advance(2 * time.Second)
	b.prune(retention, 0)
	if st := b.stats(); st.Retained != 2 {
		t.Errorf("retained %d after restartKeep, want 2 (only the year-old one goes)", st.Retained)
	}
	clock.Advance(retention)
	b.prune(retention, 0)
	if st := b.stats(); st.Retained != 0 {
		t.Errorf("retained %d after the retention from this start, want 0 (a clock behind must not keep them forever)", st.Retained)
	}
}

func BenchmarkPublishWake(b *testing.B) {
	bus := newBus(0, nil)
	b.ReportAllocs()
	lat := make([]time.Duration, 0, b.N)
	for b.Loop() {
		ready := make(chan struct{})
		got := make(chan time.Time)
		last := bus.Newest()
		go func() {
			close(ready)
			bus.Poll(context.Background(), PollRequest{Channels: []string{"c"}, Last: last, Hold: time.Minute})
			got <- time.Now()
		}()
		<-ready
		for bus.stats().Waiting == 0 {
			time.Sleep(10 * time.Microsecond)
		}
		r := bus.reserve(1)
		bc := bcast("c", "1")
		bc.FirstID = r.first
		start := time.Now()
		bus.finish(r, []*appliance.Broadcast{bc})
		lat = append(lat, (<-got).Sub(start))
	}
	reportPercentiles(b, lat)
}

// BenchmarkPublishWakeBurst: n polls wait, each on its own channel (the
// terminals of one multi-session); one broadcast with a ~6 KiB message
// targets every channel. The figure is the time from finish to the return
// of the last woken poll: the hand-off of a whole fan-out burst.
func BenchmarkPublishWakeBurst(b *testing.B) {
	for _, n := range []int{50, 200} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			bus := newBus(0, nil)
			chans := make([]string, n)
			targets := make([]appliance.Target, n)
			for i := range chans {
				chans[i] = fmt.Sprintf(`["shop","pos.multi_session","%d"]`, i+1)
				targets[i] = appliance.Target{Channel: chans[i], MessageID: 1}
			}
			body := []byte(`{"action":"update_order","data":{"lines":"` + strings.Repeat("x", 6<<10) + `","message_ID":`)
			lat := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			for b.Loop() {
				last := bus.Newest()
				var done sync.WaitGroup
				for _, c := range chans {
					done.Go(func() {
						if got := bus.Poll(context.Background(), PollRequest{Channels: []string{c}, Last: last, Hold: time.Minute}); len(got) != 1 {
							b.Errorf("poll on %s: %d notifications, want 1", c, len(got))
						}
					})
				}
				for bus.stats().Waiting < n {
					time.Sleep(10 * time.Microsecond)
				}
				r := bus.reserve(n)
				bc := &appliance.Broadcast{At: time.Now(), Templated: true, Prefix: body, Suffix: []byte("}}"), Targets: targets, FirstID: r.first}
				start := time.Now()
				bus.finish(r, []*appliance.Broadcast{bc})
				done.Wait()
				lat = append(lat, time.Since(start))
			}
			reportPercentiles(b, lat)
		})
	}
}

// The byte cap drops the oldest notifications even within retention, never
// the newest broadcast, and a poll below what was dropped gets what is left
// (the client resyncs by its message_ID gap); stored broadcasts below the
// returned low may go.
func TestBusPruneByteCap(t *testing.T) {
	clock := newFakeClock()
	b := newBus(0, clock.Now)
	big := strings.Repeat("x", 10_000)
	for range 10 {
		publish(b, "a", big) // ids 1..10, one channel
		clock.Advance(time.Second)
	}
	per := b.stats().RetainedBytes / 10
	if per < 10_000 || per > 11_000 {
		t.Fatalf("estimated %d bytes per 10 kB notification, want 10,000–11,000", per)
	}
	low, capped := b.prune(time.Hour, 4*per)
	if low != 7 || capped != 6 {
		t.Errorf("prune with room for 4 = low %d, capped %d; want 7 and 6", low, capped)
	}
	if st := b.stats(); st.Retained != 4 || st.RetainedBytes != 4*per {
		t.Errorf("after the cap: %+v, want 4 retained, %d bytes", st, 4*per)
	}
	got := b.Poll(context.Background(), PollRequest{Channels: []string{"a"}, Last: 2, Hold: time.Second})
	if len(got) != 4 || got[0].ID != 7 || got[3].ID != 10 {
		t.Errorf("Poll(last=2) after the cap = %d notifications from %v, want ids 7..10", len(got), got)
	}
	// Smaller than one broadcast: the newest stays.
	if low, capped := b.prune(time.Hour, 1); low != 10 || capped != 3 {
		t.Errorf("prune with a cap below one broadcast = low %d, capped %d; want 10 and 3", low, capped)
	}
	// Age still applies, and counts nothing as capped.
	clock.Advance(2 * time.Hour)
	if low, capped := b.prune(time.Hour, 1); low != 11 || capped != 0 {
		t.Errorf("prune after retention = low %d, capped %d; want 11 and 0", low, capped)
	}
	if st := b.stats(); st.Retained != 0 || st.RetainedBytes != 0 || st.Channels != 0 {
		t.Errorf("after retention: %+v, want nothing retained", st)
	}
}
