package engine

import (
	"context"
	"testing"
	"time"

	"possync/appliance"
)

func bcast(ch string, body string) *appliance.Broadcast {
	return &appliance.Broadcast{At: time.Now(), Prefix: []byte(body), Targets: []appliance.Target{{Channel: ch}}}
}

func TestBusPublishesInIDOrder(t *testing.T) {
	b := newBus(0)
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
	b := newBus(10)
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
	b := newBus(0)
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
	b := newBus(5)
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

func TestBusReplayAndBeyondNewest(t *testing.T) {
	b := newBus(0)
	old := &appliance.Broadcast{FirstID: 1, At: time.Now().Add(-2 * time.Minute), Prefix: []byte("1"), Targets: []appliance.Target{{Channel: "c"}}}
	recent := &appliance.Broadcast{FirstID: 2, At: time.Now(), Prefix: []byte("2"), Targets: []appliance.Target{{Channel: "c"}}}
	r := b.reserve(2)
	b.finish(r, []*appliance.Broadcast{old, recent})
	for _, last := range []uint64{0, 3, 1 << 62} {
		got := b.Poll(context.Background(), PollRequest{Channels: []string{"c"}, Last: last, Hold: time.Second, Replay: 50 * time.Second})
		if len(got) != 1 || got[0].ID != 2 {
			t.Errorf("Poll(last=%d) = %+v, want only id 2 (replay window)", last, got)
		}
	}
	got := b.Poll(context.Background(), PollRequest{Channels: []string{"c"}, Last: 1, Hold: time.Second})
	if len(got) != 1 || got[0].ID != 2 {
		t.Errorf("Poll(last=1) = %+v, want id 2", got)
	}
}

func TestBusPruneAndClose(t *testing.T) {
	b := newBus(0)
	old := &appliance.Broadcast{FirstID: 1, At: time.Now().Add(-time.Hour), Prefix: []byte("1"), Targets: []appliance.Target{{Channel: "a"}, {Channel: "b"}}}
	recent := &appliance.Broadcast{FirstID: 3, At: time.Now(), Prefix: []byte("2"), Targets: []appliance.Target{{Channel: "b"}}}
	r := b.reserve(3)
	b.finish(r, []*appliance.Broadcast{old, recent})
	if low := b.prune(time.Now().Add(-time.Minute)); low != 3 {
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

func BenchmarkPublishWake(b *testing.B) {
	bus := newBus(0)
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
