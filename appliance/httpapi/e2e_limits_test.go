package httpapi_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"possync/appliance/apptest"
	"possync/appliance/engine"
)

// TestStateBounds: beyond security.max_databases, max_multi_sessions and
// max_terminals a request is refused with a JSON-RPC error naming the key,
// nothing is kept (not in memory, not on disk: a restart loads the same
// counts), a flood of made-up names does not grow the state, and what
// exists is still served. Counts and bounds show on status.json and
// /metrics.
func TestStateBounds(t *testing.T) {
	srv, logs := newLogged(t, apptest.Options{MaxDatabases: 2, MaxMultiSessions: 3, MaxTerminals: 4})
	post := func(path, body string) answer { return do(t, nil, "POST", srv.URL+path, body, nil) }
	ok := func(what string, a answer) {
		t.Helper()
		if a.status != 200 || !strings.Contains(string(a.body), `"result"`) {
			t.Fatalf("%s = %d %s, want a result", what, a.status, a.body)
		}
	}
	refused := func(what, key string, a answer) {
		t.Helper()
		if a.status != 200 {
			t.Fatalf("%s = HTTP %d %s, want 200 with a JSON-RPC error", what, a.status, a.body)
		}
		name, msg := a.rpcErr(t)
		if name != "possync.exceptions.LimitReached" || !strings.Contains(msg, key) {
			t.Errorf("%s: error %q %q, want LimitReached naming %s", what, name, msg, key)
		}
	}
	const pathUpdate = "/pos_multi_session_sync/update"

	ok("shop/1 POS 1", post(pathUpdate, syncAllBody("shop", 1, 1)))
	ok("cafe/1 POS 2", post(pathUpdate, syncAllBody("cafe", 1, 2)))
	refused("third database", "security.max_databases", post(pathUpdate, syncAllBody("bar", 1, 3)))
	refused("ping of a third database", "security.max_databases", post("/pos_longpolling/update", pingBody("bar", 3)))
	ok("shop/2 POS 3", post(pathUpdate, syncAllBody("shop", 2, 3)))
	refused("fourth multi-session", "security.max_multi_sessions", post(pathUpdate, syncAllBody("shop", 3, 4)))
	ok("shop/1 POS 4", post(pathUpdate, syncAllBody("shop", 1, 4)))
	refused("fifth terminal", "security.max_terminals", post(pathUpdate, syncAllBody("shop", 1, 5)))

	want := engine.Limits{Databases: 2, MaxDatabases: 2, MultiSessions: 3, MaxMultiSessions: 3, Terminals: 4, MaxTerminals: 4}
	check := func(when string, e *engine.Engine) {
		t.Helper()
		got := e.Limits()
		got.Activity = 0
		if got != want {
			t.Errorf("%s: Limits() = %+v, want %+v", when, got, want)
		}
	}
	check("after the refusals", srv.Engine)

	// A flood of made-up database names and POS ids: every one refused,
	// nothing grows.
	for i := range 2000 {
		a := post(pathUpdate, syncAllBody(fmt.Sprintf("flood%d", i), int64(i), int64(1000+i)))
		if i%500 == 0 {
			refused("flood", "security.max_databases", a)
		}
	}
	for i := range 200 {
		refusedQuiet := post(pathUpdate, syncAllBody("shop", 1, int64(5000+i)))
		if i == 0 {
			refused("terminal flood", "security.max_terminals", refusedQuiet)
		}
	}
	check("after the flood", srv.Engine)
	if act := srv.Engine.Limits().Activity; act > 4 {
		t.Errorf("activity table holds %d POSes, want at most max_terminals (4)", act)
	}
	if got := logs.lines("refused request", "rule=limit"); len(got) != 1 {
		t.Errorf("limit refusal log lines = %d, want 1 (once a minute per source and rule)", len(got))
	} else {
		if !strings.Contains(got[0], " value=") || strings.Contains(got[0], ` value="" `) {
			t.Errorf("%s refusal log line has no value: %s", "limit", got[0])
		}
		t.Logf("logged: %s", got[0])
	}

	// What exists is still served.
	term := openPOS(t, srv, cfg("shop", 1, 1, 2))
	o := term.NewOrder(1)
	update(t, term, o, revAnswer(o.UID(), 1, 1, 1))
	ok("ping of a known database", post("/pos_longpolling/update", pingBody("cafe", 2)))

	var st struct {
		Limits map[string]int `json:"limits"`
	}
	if err := json.Unmarshal(do(t, nil, "GET", srv.URL+"/status.json", "", nil).body, &st); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(st.Limits) != "map[databases:2 max_databases:2 max_multi_sessions:3 max_terminals:4 multi_sessions:3 terminals:4]" {
		t.Errorf("status.json limits = %v", st.Limits)
	}
	metrics := string(do(t, nil, "GET", srv.URL+"/metrics", "", nil).body)
	for _, l := range []string{"possync_tracked_databases 2", "possync_tracked_databases_max 2", "possync_tracked_terminals 4", `possync_refused_requests_total{rule="limit"} 2204`} {
		if !strings.Contains(metrics, l+"\n") {
			t.Errorf("/metrics lacks %q:\n%s", l, grepLines(metrics, "tracked", "refused"))
		}
	}

	// Nothing refused reached the store.
	srv = srv.Restart(t)
	check("after a restart", srv.Engine)
}

// grepLines returns the lines of s containing any of words.
func grepLines(s string, words ...string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		for _, w := range words {
			if strings.Contains(l, w) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}
