package httpapi_test

// Black-box acceptance tests of the HTTP API: a real server (apptest.
// MustOpenServer: fasthttp on 127.0.0.1:0, Badger in a temp dir) driven by
// simulated Odoo 12 POS terminals (apptest.Terminal) over real sockets.
// Section numbers (§) refer to ../shared/protocol.md.

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"possync/appliance/apptest"
)

// wait bounds every wait for an expected notification or answer.
const wait = 10 * time.Second

// n returns i as the json.Number that a UseNumber decoder produces.
func n(i int64) json.Number { return json.Number(fmt.Sprint(i)) }

// newServer starts a real server with short poll holds.
func newServer(t testing.TB, opts apptest.Options) *apptest.Server {
	t.Helper()
	if opts.PollHold == 0 {
		opts.PollHold = 500 * time.Millisecond
	}
	return apptest.MustOpenServer(t, opts)
}

// cfg returns a terminal configuration for POS pos of user in multi-session
// ms of db, run 1. Session ids are derived from the POS id so order uids
// differ between POSes.
func cfg(db string, ms, pos, user int64) apptest.TerminalConfig {
	return apptest.TerminalConfig{
		DB: db, MultiSessionID: ms, POSID: pos, UserID: user,
		SessionID: 100 + pos, LoginNumber: 1, RunID: 1,
	}
}

// openPOS opens a POS like the browser at start-up (§6.8): immediate
// sync_all answered over HTTP, then the bus starts polling.
func openPOS(t testing.TB, srv *apptest.Server, c apptest.TerminalConfig) *apptest.Terminal {
	t.Helper()
	term := apptest.NewTerminal(t, srv.URL, c)
	res, err := term.SyncAll(true, "")
	if err != nil {
		t.Fatalf("start-up sync_all: %v", err)
	}
	if res["action"] != "sync_all" {
		t.Fatalf("start-up sync_all of %v = %v, want action sync_all in the HTTP answer (§4.3, §6.8)", term, res)
	}
	term.StartPolling()
	return term
}

// mustOK returns a function that fails the test on err and returns v.
func mustOK(t testing.TB) func(map[string]any, error) map[string]any {
	return func(v map[string]any, err error) map[string]any {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// revAnswer is the answer to an accepted update_order (§4.2 step 6).
func revAnswer(uid string, rev, orderID, run int64) map[string]any {
	return map[string]any{"action": "update_revision_ID", "revision_ID": n(rev), "uid": uid, "order_ID": n(orderID), "run_ID": n(run)}
}

// update sends order from term and checks the answer is want.
func update(t testing.TB, term *apptest.Terminal, o apptest.Order, want map[string]any) {
	t.Helper()
	got, err := term.UpdateOrder(o)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("%v UpdateOrder(%s rev %d) answer mismatch (-want +got):\n%s", term, o.UID(), o.Revision(), diff)
	}
}

// nextMS returns the next pos.multi_session notification of term, skipping
// PONGs.
func nextMS(t testing.TB, term *apptest.Terminal) apptest.Notification {
	t.Helper()
	nt, _, err := term.WaitFor(wait, "a pos.multi_session message", func(x apptest.Notification) bool {
		return x.Kind() == "pos.multi_session"
	})
	if err != nil {
		t.Fatal(err)
	}
	return nt
}

// expectMS reads the next pos.multi_session notification of term and checks
// its action and uid.
func expectMS(t testing.TB, term *apptest.Terminal, action, uid string) apptest.Notification {
	t.Helper()
	nt := nextMS(t, term)
	if nt.Action() != action || nt.UID() != uid {
		t.Fatalf("%v received %v, want %s of %q next", term, nt, action, uid)
	}
	return nt
}

// expectQuiet checks, with a PING barrier, that nothing but PONG was
// published for term since the last notification read.
func expectQuiet(t testing.TB, term *apptest.Terminal) {
	t.Helper()
	before, err := term.Barrier(wait)
	if err != nil {
		t.Fatal(err)
	}
	if len(before) != 0 {
		t.Errorf("%v received %v, want nothing", term, before)
	}
}

// expectNoGaps checks the message_ID continuity recorded by term's poller.
func expectNoGaps(t testing.TB, terms ...*apptest.Terminal) {
	t.Helper()
	for _, term := range terms {
		if g := term.Gaps(); len(g) != 0 {
			t.Errorf("%v detected message_ID gaps (§6.1): %v", term, g)
		}
	}
}

// normalize deep-copies order data and drops what differs legitimately
// between what a POS sent and what another receives: nonce, message_ID and
// the lines' is_changed flags.
func normalize(d map[string]any) map[string]any {
	c := apptest.Clone(d)
	delete(c, "nonce")
	delete(c, "message_ID")
	for _, l := range apptest.Lines(c) {
		delete(l, "is_changed")
	}
	return c
}

// sentAs returns the data that receivers of o's update from term should see,
// normalized: o as exported before sending, plus pos_id, with the server's
// revision and number from the answer.
func sentAs(term *apptest.Terminal, exported map[string]any, answer map[string]any) map[string]any {
	d := normalize(exported)
	d["pos_id"] = n(term.Config().POSID)
	d["revision_ID"] = answer["revision_ID"]
	d["sequence_number"] = answer["order_ID"]
	return d
}

// syncOrders returns the orders[i].data of a sync_all result or message,
// keyed by uid.
func syncOrders(t testing.TB, msg map[string]any) map[string]map[string]any {
	t.Helper()
	d, ok := msg["data"].(map[string]any)
	if !ok {
		t.Fatalf("sync_all without data object: %v", msg)
	}
	list, ok := d["orders"].([]any)
	if !ok {
		t.Fatalf("sync_all data.orders = %T, want an array: %v", d["orders"], msg)
	}
	out := map[string]map[string]any{}
	for i, o := range list {
		om, _ := o.(map[string]any)
		od, _ := om["data"].(map[string]any)
		uid, _ := od["uid"].(string)
		if om["action"] != "update_order" || uid == "" {
			t.Fatalf("sync_all orders[%d] = %v, want an update_order message with data.uid", i, o)
		}
		out[uid] = od
	}
	return out
}

// keys returns the sorted-insensitive set of map keys for messages.
func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// containsFold reports whether s contains sub, ignoring case.
func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}
