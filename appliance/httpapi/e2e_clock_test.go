package httpapi_test

// A Pi has no battery-backed clock (field report, issue 13): after a power
// cut it may start with a wall clock behind the times it stored. Replay,
// retention and the status page must not trust stored wall-clock times
// across a restart (ARCHITECTURE.md "Durability").

import (
	"encoding/json"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"possync/appliance/apptest"
)

// skewedClock returns an engine clock running offset (in ns) ahead of the
// real one.
func skewedClock(offset *atomic.Int64) func() time.Time {
	return func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
}

// The input: notifications stored with times 1 h ahead of the
// clock after the restart; a reloading till polls with last = 0 and must
// not get them (it used to get all at once), just as the control stored
// 60 s in the past is held. A till reconnecting with its cursor still gets
// both: they are retained.
func TestRestartWithClockBehindDoesNotReplay(t *testing.T) {
	t.Parallel()
	const hold = 300 * time.Millisecond
	var offset atomic.Int64
	srv := newServer(t, apptest.Options{PollHold: hold, Now: skewedClock(&offset)})
	ahead := apptest.NewTerminal(t, srv.URL, cfg("shopA", 1, 5, 2))
	control := apptest.NewTerminal(t, srv.URL, cfg("shopA", 1, 6, 2))
	offset.Store(int64(-60 * time.Second))
	if _, err := control.Ping(); err != nil {
		t.Fatal(err)
	}
	offset.Store(int64(time.Hour))
	for range 3 {
		if _, err := ahead.Ping(); err != nil {
			t.Fatal(err)
		}
	}
	offset.Store(0) // the box restarts with its clock an hour behind run 1
	srv = srv.Restart(t)
	for _, term := range []*apptest.Terminal{ahead, control} {
		term.SetURL(srv.URL)
		ns, r, err := term.PollOnce(0)
		if err != nil {
			t.Fatal(err)
		}
		if len(ns) != 0 {
			t.Errorf("%v: reloading poll (last=0) after restart = %v, want [] (stored before the restart)", term, ns)
		}
		if r.Elapsed < hold*9/10 {
			t.Errorf("%v: reloading poll answered after %v, want it held %v", term, r.Elapsed, hold)
		}
	}
	if ns, _, err := ahead.PollOnce(1); err != nil || len(ns) != 3 {
		t.Errorf("reconnecting poll (last=1) after restart = %v, %v; want the 3 retained PONGs", ns, err)
	}
	if st := srv.Engine.Stats(); st.Bus.Retained != 4 {
		t.Errorf("retained notifications after restart = %d, want 4", st.Bus.Retained)
	}
}

// The status page never shows a negative or absurd age, even when the
// engine's clock is an hour ahead of the wall clock: ages are monotonic
// differences taken in this run.
func TestStatusAgesNeverNegative(t *testing.T) {
	t.Parallel()
	var offset atomic.Int64
	offset.Store(int64(time.Hour))
	srv := newServer(t, apptest.Options{Now: skewedClock(&offset)})
	openPOS(t, srv, cfg("shop", 1, 7, 2))
	resp, err := http.Get(srv.URL + "/status.json")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var st struct {
		Uptime        int64 `json:"uptime_seconds"`
		MultiSessions []struct {
			Terminals []struct {
				POS        int64  `json:"pos_id"`
				LastUpdate *int64 `json:"last_update_age_seconds"`
			} `json:"terminals"`
		} `json:"multi_sessions"`
	}
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("status.json: %v\n%.2000s", err, body)
	}
	found := false
	for _, ms := range st.MultiSessions {
		for _, term := range ms.Terminals {
			if term.POS != 7 {
				continue
			}
			found = true
			if term.LastUpdate == nil || *term.LastUpdate < 0 || *term.LastUpdate > st.Uptime+1 {
				t.Errorf("POS 7 last_update_age_seconds = %v (uptime %d s), want 0 ≤ age ≤ uptime", term.LastUpdate, st.Uptime)
			}
		}
	}
	if !found {
		t.Fatalf("status.json has no POS 7:\n%.2000s", body)
	}
}
