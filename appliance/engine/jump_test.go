package engine

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"possync/storage/memstore"
)

// While PONGs are published and other clients keep making the ids jump
// past their own future cursors, a client that started with a cursor from
// the future and keeps max(ids), like the Odoo 12 client, gets every
// notification of its channel exactly once.
func TestJumpsRaceWithPublishes(t *testing.T) {
	e := openEngine(t, memstore.New(), Options{})
	ctx := context.Background()
	ping := json.RawMessage(`{"message":"PING","pos_id":5,"db_name":"shop"}`)
	ch := channel("shop", "pos.longpolling", 5)
	poll := func(last uint64, hold time.Duration) []Notification {
		return e.Poll(ctx, PollParams{Channels: []string{ch}, Last: last}, hold, 50*time.Second)
	}

	var (
		mu   sync.Mutex
		got  = map[uint64]int{}
		stop = make(chan struct{})
		wg   sync.WaitGroup
	)
	wg.Add(1)
	go func() { // the client
		defer wg.Done()
		last := uint64(1000)
		for {
			ns := poll(last, 20*time.Millisecond)
			mu.Lock()
			for _, n := range ns {
				got[n.ID]++
				last = max(last, n.ID)
			}
			mu.Unlock()
			select {
			case <-stop:
				if len(ns) == 0 {
					return
				}
			default:
			}
		}
	}()
	for e.Stats().Bus.Waiting == 0 {
		time.Sleep(time.Millisecond)
	}
	var jumpers sync.WaitGroup
	for j := range 3 {
		jumpers.Add(1)
		go func() { // other tills with ever newer cursors from elsewhere
			defer jumpers.Done()
			for i := range 20 {
				poll(e.Bus().Newest()+uint64(1000*(j+1)+i), time.Millisecond)
			}
		}()
	}
	for range 200 {
		if _, err := e.Ping(ctx, ping); err != nil {
			t.Fatal(err)
		}
	}
	jumpers.Wait()
	close(stop)
	wg.Wait()

	all := poll(0, time.Millisecond) // this run's notifications on ch (replay)
	if len(all) != 200 {
		t.Fatalf("replay has %d PONGs, want 200", len(all))
	}
	for _, n := range all {
		if got[n.ID] != 1 {
			t.Errorf("PONG %d delivered %d times, want once", n.ID, got[n.ID])
		}
	}
	if len(got) != len(all) {
		t.Errorf("client got %d ids, want %d", len(got), len(all))
	}
	if st := e.Stats(); st.BusJumps < 2 {
		t.Errorf("bus jumps = %d, want several", st.BusJumps)
	}
}
