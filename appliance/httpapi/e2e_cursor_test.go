package httpapi_test

// A client whose bus cursor is above every id of the box (field report,
// issue 7): a cursor restored from the main Odoo's bus (§9.3-1) or seen on
// an earlier box. Each notification must reach it once, without a poll
// storm, and it must come back into step by itself.

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"possync/appliance/apptest"
	"possync/appliance/engine"
)

// pollChannel sends one poll on a single channel with a raw last value.
func pollChannel(t *testing.T, term *apptest.Terminal, channel string, last any) ([]apptest.Notification, apptest.RawResponse) {
	t.Helper()
	r := term.Call(apptest.RoutePoll, map[string]any{"channels": []string{channel}, "last": last, "options": map[string]any{"bus_inactivity": 10}})
	ns, err := apptest.ParsePoll(r)
	if err != nil {
		t.Fatalf("poll %s last=%v: %v", channel, last, err)
	}
	return ns, r
}

func ids(ns []apptest.Notification) []int64 {
	out := make([]int64, 0, len(ns))
	for _, x := range ns {
		out = append(out, x.ID)
	}
	return out
}

// The input: one PONG for POS 5 of shopA, then three polls of its
// channel with last = 1000000. None may repeat the PONG (each used to answer
// it at once). The box's ids then move past the cursor, so the next PONG
// reaches a client that keeps max(ids), once, and so does one published
// between two of its polls.
func TestFutureCursorGetsEachNotificationOnce(t *testing.T) {
	t.Parallel()
	const hold = 500 * time.Millisecond
	srv := newServer(t, apptest.Options{PollHold: hold})
	term := apptest.NewTerminal(t, srv.URL, cfg("shopA", 1, 5, 2))
	ch := term.Channel("pos.longpolling")
	if _, err := term.Ping(); err != nil {
		t.Fatal(err)
	}
	const cursor = 1000000
	for i := range 3 {
		ns, r := pollChannel(t, term, ch, cursor)
		if len(ns) != 0 {
			t.Fatalf("poll %d with last=%d = %v, want [] (the old PONG must not come again)", i+1, cursor, ns)
		}
		if r.Elapsed < hold*9/10 {
			t.Errorf("poll %d with last=%d answered after %v, want it held %v", i+1, cursor, r.Elapsed, hold)
		}
	}

	// The client keeps max(ids): its cursor stays 1000000 until it sees more.
	last := int64(cursor)
	done := make(chan []apptest.Notification, 1)
	go func() { ns, _ := pollChannel(t, term, ch, last); done <- ns }()
	waitPolling(t, srv, 1)
	if _, err := term.Ping(); err != nil {
		t.Fatal(err)
	}
	ns := <-done
	if len(ns) != 1 || !ns[0].IsPong() || ns[0].ID <= cursor {
		t.Fatalf("poll waiting with last=%d got %v, want one new PONG with an id above the cursor", cursor, ns)
	}
	last = ns[0].ID

	// Published between the answer and the next poll: delivered once.
	if _, err := term.Ping(); err != nil {
		t.Fatal(err)
	}
	ns, r := pollChannel(t, term, ch, last)
	if len(ns) != 1 || ns[0].ID != last+1 || r.Elapsed > hold/2 {
		t.Fatalf("poll with last=%d = %v after %v, want the PONG %d at once", last, ns, r.Elapsed, last+1)
	}
	last = ns[0].ID
	if ns, _ := pollChannel(t, term, ch, last); len(ns) != 0 {
		t.Fatalf("poll with last=%d = %v, want [] (nothing twice)", last, ns)
	}
	if st := srv.Engine.Stats(); st.BusJumps != 1 {
		t.Errorf("bus id jumps = %d, want 1 (later polls are ordinary)", st.BusJumps)
	}
}

// waitPolling waits until n polls wait on the server.
func waitPolling(t *testing.T, srv *apptest.Server, n int) {
	t.Helper()
	for deadline := time.Now().Add(wait); srv.Engine.Stats().Bus.Waiting < n; {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d polls waiting after %v", n, wait)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// The jump is durable: after a restart the box's ids continue above the
// cursor it was shown, so the client is not "in the future" again.
func TestFutureCursorJumpSurvivesRestart(t *testing.T) {
	t.Parallel()
	srv := newServer(t, apptest.Options{PollHold: 200 * time.Millisecond})
	term := apptest.NewTerminal(t, srv.URL, cfg("shopA", 1, 5, 2))
	ch := term.Channel("pos.longpolling")
	const cursor = 5000000
	if ns, _ := pollChannel(t, term, ch, cursor); len(ns) != 0 {
		t.Fatalf("first poll = %v, want []", ns)
	}
	srv = srv.Restart(t)
	term.SetURL(srv.URL)
	if _, err := term.Ping(); err != nil {
		t.Fatal(err)
	}
	ns, _ := pollChannel(t, term, ch, cursor)
	if len(ns) != 1 || ns[0].ID != cursor+1 {
		t.Fatalf("poll with last=%d after restart = %v, want the new PONG with id %d", cursor, ns, cursor+1)
	}
	if st := srv.Engine.Stats(); st.BusJumps != 0 {
		t.Errorf("bus id jumps after restart = %d, want 0", st.BusJumps)
	}
}

// Absurd cursors (2^63, beyond JavaScript's exact 2^53, 1e30, 20 digits)
// repeat nothing and cannot drag the id space up: ids stay small, and a
// poll waiting with such a cursor still gets what is published.
func TestAbsurdCursorCannotWreckIDs(t *testing.T) {
	t.Parallel()
	srv := newServer(t, apptest.Options{PollHold: 200 * time.Millisecond})
	term := apptest.NewTerminal(t, srv.URL, cfg("shopA", 1, 5, 2))
	ch := term.Channel("pos.longpolling")
	if _, err := term.Ping(); err != nil {
		t.Fatal(err)
	}
	absurd := []any{
		json.Number("9223372036854775808"), json.Number(fmt.Sprint(engine.MaxJumpCursor)),
		json.Number("9007199254740993"), json.Number("1e30"), json.Number("99999999999999999999"),
	}
	for _, last := range absurd {
		if ns, _ := pollChannel(t, term, ch, last); len(ns) != 0 {
			t.Errorf("poll with last=%v = %v, want [] (nothing repeated)", last, ns)
		}
	}
	done := make(chan []apptest.Notification, 1)
	go func() {
		ns, _ := pollChannel(t, term, ch, json.Number("9223372036854775808"))
		done <- ns
	}()
	waitPolling(t, srv, 1)
	if _, err := term.Ping(); err != nil {
		t.Fatal(err)
	}
	ns := <-done
	if len(ns) != 1 || !ns[0].IsPong() || ns[0].ID > 10 {
		t.Fatalf("poll waiting with last=2^63 = %v, want the new PONG with a small id", ns)
	}
	if st := srv.Engine.Stats(); st.BusJumps != 0 || st.Bus.Newest > 10 {
		t.Errorf("after absurd cursors: %d jumps, newest id %d; want no jump", st.BusJumps, st.Bus.Newest)
	}
}

// Two tills that behave like the Odoo 12 client (they keep max(ids), apply
// sync_all by destroying the server orders it does not list and send
// remove_order for them, request sync_all on a message_ID gap) start with
// different cursors from the future. One creates an order: the other must
// get it and keep it, no remove_order may reach the server, each bus id
// reaches each till once, and they must not poll in a tight loop.
func TestFutureCursorTillsKeepOrders(t *testing.T) {
	t.Parallel()
	const hold = 300 * time.Millisecond
	srv := newServer(t, apptest.Options{PollHold: hold})
	ca, cb := cfg("shop", 1, 1, 2), cfg("shop", 1, 2, 2) // same user: pushed sync_all reach both (§4.3)
	ca.Cursor, cb.Cursor = 1_000_000, 2_500_000
	a, b := apptest.NewTill(t, srv.URL, ca), apptest.NewTill(t, srv.URL, cb)
	start := time.Now()
	for _, till := range []*apptest.Till{a, b} {
		if err := till.Start(); err != nil {
			t.Fatal(err)
		}
	}
	// Both went online and asked for a pushed sync_all; wait until b has
	// applied both (its own and a's, same user).
	for deadline := time.Now().Add(wait); b.SyncAllsApplied() < 2 || a.SyncAllsApplied() < 2; {
		if time.Now().After(deadline) {
			t.Fatalf("pushed sync_all not applied: a %d, b %d", a.SyncAllsApplied(), b.SyncAllsApplied())
		}
		time.Sleep(5 * time.Millisecond)
	}
	o, err := a.CreateOrder(1)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(wait); !b.HasOrder(o.UID()); {
		if time.Now().After(deadline) {
			t.Fatalf("till b never got order %s; it holds %v", o.UID(), b.OrderUIDs())
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Several holds: long enough for a replaying server to destroy it.
	time.Sleep(6 * hold)
	elapsed := time.Since(start)

	for _, till := range []*apptest.Till{a, b} {
		if !till.HasOrder(o.UID()) {
			t.Errorf("%v lost order %s; holds %v", till, o.UID(), till.OrderUIDs())
		}
		if rm := till.RemovesSent(); len(rm) != 0 {
			t.Errorf("%v sent remove_order for %v", till, rm)
		}
		if rep := till.Repeats(); len(rep) != 0 {
			t.Errorf("%v got bus ids more than once (id: times): %v", till, rep)
		}
		if errs := till.Errors(); len(errs) != 0 {
			t.Errorf("%v: failed requests %v", till, errs)
		}
		// No storm: each poll is held or answers a new notification.
		if max := int(elapsed/hold) + till.Delivered() + 4; till.Polls() > max {
			t.Errorf("%v polled %d times in %v (hold %v, %d notifications), want at most %d", till, till.Polls(), elapsed, hold, till.Delivered(), max)
		}
		t.Logf("%v: %d polls, %d notifications, cursor %d in %v", till, till.Polls(), till.Delivered(), till.Last(), elapsed.Round(time.Millisecond))
	}
	fresh := apptest.NewTerminal(t, srv.URL, cfg("shop", 1, 3, 4))
	res, err := fresh.SyncAll(true, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := keys(syncOrders(t, res)); !slices.Equal(got, []string{o.UID()}) {
		t.Errorf("server's open orders = %v, want [%s] (the order must not be deleted)", got, o.UID())
	}
	if a.Last() <= 2_500_000 || b.Last() <= 2_500_000 {
		t.Errorf("cursors a=%d b=%d, want both above the higher future cursor (ids moved past it)", a.Last(), b.Last())
	}
}
