package httpapi_test

// The bus (§3.1, §3.3, §4.3 pushed sync_all, §4.5 relay, §5.3, decisions 1
// and 5): PING/PONG, waiting and waking polls, timeouts, replay, global ids,
// database isolation.

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"possync/appliance/apptest"
)

// §3.3: PING answers 1 and publishes "PONG" on exactly that POS's
// pos.longpolling channel; the message value is ignored; every PING is
// answered, even for a POS the server never saw (§9.3-2).
func TestPingPong(t *testing.T) {
	t.Parallel()
	srv := newServer(t, apptest.Options{})
	a := openPOS(t, srv, cfg("shop", 1, 7, 2))
	b := openPOS(t, srv, cfg("shop", 1, 8, 2))
	r := a.Call(apptest.RoutePing, map[string]any{"message": "anything", "pos_id": 7, "db_name": "shop"})
	if err := r.Failure(); err != nil || r.Result != json.Number("1") {
		t.Fatalf("PING result = %v (%v), want 1", r.Result, err)
	}
	pong, skipped, err := a.WaitFor(wait, "PONG", apptest.Notification.IsPong)
	if err != nil {
		t.Fatal(err)
	}
	if want := `["shop","pos.longpolling","7"]`; pong.Channel != want || len(skipped) != 0 {
		t.Errorf("PONG on channel %s after %v, want on %s alone", pong.Channel, skipped, want)
	}
	expectQuiet(t, b)

	stranger := apptest.NewTerminal(t, srv.URL, cfg("otherdb", 9, 99, 1))
	if _, err := stranger.Ping(); err != nil {
		t.Fatal(err)
	}
	ns, _, err := stranger.PollOnce(0)
	if err != nil || len(ns) != 1 || !ns[0].IsPong() {
		t.Errorf("poll of an unknown POS after its PING = %v, %v; want its PONG", ns, err)
	}
}

// §4.3 step 5: a non-immediate sync_all answers {} over HTTP and pushes the
// sync_all to every POS of that user in that multi-session, each copy with
// that POS's current message_ID (the requester's incremented).
func TestSyncAllPushed(t *testing.T) {
	t.Parallel()
	srv := newServer(t, apptest.Options{})
	a := openPOS(t, srv, cfg("shop", 1, 1, 2))
	a2 := openPOS(t, srv, cfg("shop", 1, 2, 2))       // same user
	c := openPOS(t, srv, cfg("shop", 1, 3, 3))        // other user
	other := openPOS(t, srv, cfg("shop", 2, 4, 2))    // same user, other multi-session
	otherDB := openPOS(t, srv, cfg("shop2", 1, 5, 2)) // same user and ids, other database
	must := mustOK(t)

	o := c.NewOrder(1)
	c.AddLine(o, 50, 1, 1)
	update(t, c, o, revAnswer(o.UID(), 1, 1, 1))
	for _, term := range []*apptest.Terminal{a, a2, c} {
		expectMS(t, term, "update_order", o.UID())
	}
	ma, ma2 := a.MessageID(), a2.MessageID()

	if res := must(a.SyncAll(false, "")); len(res) != 0 {
		t.Fatalf("non-immediate sync_all HTTP result = %v, want {}", res)
	}
	sa := expectMS(t, a, "sync_all", "")
	if got := sa.MessageID(); got != ma+1 {
		t.Errorf("requester's pushed sync_all message_ID = %d, want %d", got, ma+1)
	}
	if got := keys(syncOrders(t, sa.Msg())); !slices.Equal(got, []string{o.UID()}) {
		t.Errorf("pushed sync_all orders = %v, want [%s]", got, o.UID())
	}
	if got := expectMS(t, a2, "sync_all", "").MessageID(); got != ma2 {
		t.Errorf("same user's other POS got sync_all with message_ID %d, want its current %d", got, ma2)
	}
	for _, term := range []*apptest.Terminal{c, other, otherDB} {
		expectQuiet(t, term)
	}
	update(t, c, o, revAnswer(o.UID(), 2, 1, 1))
	for _, term := range []*apptest.Terminal{a, a2, c} {
		expectMS(t, term, "update_order", o.UID())
	}
	expectNoGaps(t, a, a2, c)
}

// §3.1 step 2: a poll with nothing pending waits and wakes on publish.
func TestPollWaitsAndWakes(t *testing.T) {
	t.Parallel()
	const hold = 5 * time.Second
	srv := newServer(t, apptest.Options{PollHold: hold})
	a := apptest.NewTerminal(t, srv.URL, cfg("shop", 1, 1, 2))
	if _, err := a.Ping(); err != nil {
		t.Fatal(err)
	}
	ns, _, err := a.PollOnce(0)
	if err != nil || len(ns) != 1 {
		t.Fatalf("PollOnce(0) = %v, %v; want the PONG", ns, err)
	}
	last := ns[0].ID
	const pause = 30 * time.Millisecond
	var wakes []time.Duration
	for i := range 15 {
		type answer struct {
			ns  []apptest.Notification
			err error
			at  time.Time
		}
		done := make(chan answer, 1)
		polled := time.Now()
		go func() {
			ns, _, err := a.PollOnce(last)
			done <- answer{ns, err, time.Now()}
		}()
		time.Sleep(pause) // give the poll time to reach the server and wait; checked below
		published := time.Now()
		if _, err := a.Ping(); err != nil {
			t.Fatal(err)
		}
		var got answer
		select {
		case got = <-done:
		case <-time.After(wait):
			t.Fatalf("poll %d: no answer %v after the publish", i, wait)
		}
		if got.err != nil || len(got.ns) != 1 || !got.ns[0].IsPong() || got.ns[0].ID <= last {
			t.Fatalf("poll %d with last=%d = %v, %v; want one new PONG", i, last, got.ns, got.err)
		}
		if waited := got.at.Sub(polled); waited < pause || waited > hold/2 {
			t.Errorf("poll %d answered after %v, want between %v (it waited) and %v (woken, not timed out)", i, waited, pause, hold/2)
		}
		wakes = append(wakes, got.at.Sub(published))
		last = got.ns[0].ID
	}
	slices.Sort(wakes)
	t.Logf("publish→wake (PING request start to poll answer) over %d polls: min %v, median %v, max %v",
		len(wakes), wakes[0], wakes[len(wakes)/2], wakes[len(wakes)-1])
}

// §3.1 step 2: with nothing to report, the poll answers [] after the hold.
func TestPollTimesOut(t *testing.T) {
	t.Parallel()
	const hold = 300 * time.Millisecond
	srv := newServer(t, apptest.Options{PollHold: hold})
	a := apptest.NewTerminal(t, srv.URL, cfg("shop", 1, 1, 2))
	for _, last := range []int64{0, 1} {
		if last == 1 {
			b := apptest.NewTerminal(t, srv.URL, cfg("shop", 1, 2, 2))
			if _, err := b.Ping(); err != nil { // id 1 exists, on another channel
				t.Fatal(err)
			}
		}
		ns, r, err := a.PollOnce(last)
		if err != nil || len(ns) != 0 || string(r.Body) == "" {
			t.Fatalf("PollOnce(%d) = %v, %v; want []", last, ns, err)
		}
		if r.Elapsed < hold*9/10 || r.Elapsed > hold+2*time.Second {
			t.Errorf("PollOnce(%d) answered [] after %v, want after the %v hold", last, r.Elapsed, hold)
		}
	}
}

// §3.1 step 1 and decision 5: last=0 replays the recent notifications at
// once; last=newest, and any last above the newest id (a cursor from
// another bus, §9.3-1), waits: nothing is repeated.
func TestPollReplay(t *testing.T) {
	t.Parallel()
	const hold = 2 * time.Second // "immediate" below means well under it, even on a loaded machine
	srv := newServer(t, apptest.Options{PollHold: hold})
	a := apptest.NewTerminal(t, srv.URL, cfg("shop", 1, 1, 2))
	if _, err := a.Ping(); err != nil {
		t.Fatal(err)
	}
	ns, _, err := a.PollOnce(0)
	if err != nil || len(ns) != 1 {
		t.Fatalf("PollOnce(0) = %v, %v; want the PONG", ns, err)
	}
	pong := ns[0]
	tests := []struct {
		name   string
		last   any
		replay bool
	}{
		{"zero", 0, true},
		{"newest", pong.ID, false},
		{"above newest", pong.ID + 1000, false},
		{"1e30", json.Number("1e30"), false},
		{"20 digits", json.Number("99999999999999999999"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := a.PollParams(0)
			p["last"] = tt.last
			r := a.Call(apptest.RoutePoll, p)
			got, err := apptest.ParsePoll(r)
			if err != nil {
				t.Fatalf("poll with last=%v: %v", tt.last, err)
			}
			var want []int64
			if tt.replay {
				want = []int64{pong.ID}
				if r.Elapsed > hold/2 {
					t.Errorf("poll with last=%v took %v, want an immediate replay", tt.last, r.Elapsed)
				}
			}
			var ids []int64
			for _, x := range got {
				ids = append(ids, x.ID)
			}
			if !slices.Equal(ids, want) {
				t.Errorf("poll with last=%v returned ids %v, want %v", tt.last, ids, want)
			}
		})
	}
}

// The replay window limits last=0 only; a client with a real last still
// gets older notifications (retained ≥ 10 minutes, decision 5).
func TestPollReplayWindow(t *testing.T) {
	t.Parallel()
	const replay = 300 * time.Millisecond
	srv := newServer(t, apptest.Options{PollHold: 200 * time.Millisecond, Replay: replay})
	a := apptest.NewTerminal(t, srv.URL, cfg("shop", 1, 1, 2))
	b := apptest.NewTerminal(t, srv.URL, cfg("shop", 1, 2, 2))
	for _, term := range []*apptest.Terminal{b, a} { // so that a's PONG has an id above 1
		if _, err := term.Ping(); err != nil {
			t.Fatal(err)
		}
	}
	ns, _, err := a.PollOnce(0)
	if err != nil || len(ns) != 1 || ns[0].ID < 2 {
		t.Fatalf("PollOnce(0) within the replay window = %v, %v; want the PONG", ns, err)
	}
	time.Sleep(replay + 100*time.Millisecond) // time-based rule: let the window pass
	if ns, _, err := a.PollOnce(0); err != nil || len(ns) != 0 {
		t.Errorf("PollOnce(0) after the replay window = %v, %v; want []", ns, err)
	}
	if got, _, err := a.PollOnce(ns[0].ID - 1); err != nil || len(got) != 1 {
		t.Errorf("PollOnce(%d) after the replay window = %v, %v; want the retained PONG", ns[0].ID-1, got, err)
	}
}

// §3.1 step 4: ids are one increasing sequence across channels and
// databases, in publish order.
func TestBusIDsGlobal(t *testing.T) {
	t.Parallel()
	srv := newServer(t, apptest.Options{})
	a := apptest.NewTerminal(t, srv.URL, cfg("shop", 1, 1, 2))
	b := apptest.NewTerminal(t, srv.URL, cfg("shop", 1, 2, 2))
	c := apptest.NewTerminal(t, srv.URL, cfg("other", 1, 1, 2))
	order := []*apptest.Terminal{a, c, b, a, c, b, b, a}
	var want []string
	for _, term := range order {
		if _, err := term.Ping(); err != nil {
			t.Fatal(err)
		}
		want = append(want, term.Channel("pos.longpolling"))
	}
	var channels []string
	for _, term := range []*apptest.Terminal{a, b, c} {
		channels = append(channels, term.Channel("pos.longpolling"), term.Channel("pos.multi_session"))
	}
	r := a.Call(apptest.RoutePoll, map[string]any{"channels": channels, "last": 0, "options": map[string]any{}})
	ns, err := apptest.ParsePoll(r)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i, x := range ns {
		got = append(got, x.Channel)
		if i > 0 && x.ID <= ns[i-1].ID {
			t.Errorf("ids not increasing: %v", ns)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("channels in id order differ from publish order (-want +got):\n%s", diff)
	}
}
