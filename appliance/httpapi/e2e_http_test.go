package httpapi_test

// HTTP-level behaviour: CORS (§3.5, decision 8), bad input (§2.3, decision 2),
// the body size limit, unknown and non-string channels (decision 5), wrong
// methods and paths. After every bad request the server must keep serving.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"possync/appliance/apptest"
)

var routes = []string{apptest.RouteUpdate, apptest.RoutePing, apptest.RoutePoll}

func checkCORS(t *testing.T, what string, r apptest.RawResponse) {
	t.Helper()
	if got := r.Header.Get("Access-Control-Allow-Origin"); got != "*" {
		t.Errorf("%s: Access-Control-Allow-Origin = %q, want \"*\"", what, got)
	}
}

// stillServing checks the server answers a good request.
func stillServing(t *testing.T, term *apptest.Terminal) {
	t.Helper()
	if res, err := term.Ping(); err != nil || res != json.Number("1") {
		t.Fatalf("server no longer serving: PING = %v, %v", res, err)
	}
}

func TestCORSPreflight(t *testing.T) {
	t.Parallel()
	srv := newServer(t, apptest.Options{})
	a := apptest.NewTerminal(t, srv.URL, cfg("shop", 1, 1, 2))
	for _, route := range append(routes, "/"+apptest.RouteUpdate) {
		r := a.Do(http.MethodOptions, route, nil, http.Header{
			"Access-Control-Request-Method":  {"POST"},
			"Access-Control-Request-Headers": {"content-type,x-debug-mode"},
		})
		if r.Err != nil || r.Status != http.StatusNoContent {
			t.Errorf("OPTIONS %s = %d %v, want 204", route, r.Status, r.Err)
			continue
		}
		checkCORS(t, "OPTIONS "+route, r)
		allow := strings.Join(r.Header.Values("Access-Control-Allow-Headers"), ",")
		for _, h := range []string{"Content-Type", "X-Debug-Mode"} {
			if !containsFold(allow, h) {
				t.Errorf("OPTIONS %s: Access-Control-Allow-Headers = %q, want it to contain %s", route, allow, h)
			}
		}
		if m := strings.Join(r.Header.Values("Access-Control-Allow-Methods"), ","); !containsFold(m, "POST") {
			t.Errorf("OPTIONS %s: Access-Control-Allow-Methods = %q, want POST", route, m)
		}
	}
}

// Access-Control-Allow-Origin on successful answers of every route, sent
// with the X-Debug-Mode header of a POS opened with ?debug=assets.
func TestCORSOnAnswers(t *testing.T) {
	t.Parallel()
	srv := newServer(t, apptest.Options{PollHold: 200 * time.Millisecond})
	c := cfg("shop", 1, 1, 2)
	c.DebugMode = "assets"
	a := apptest.NewTerminal(t, srv.URL, c)
	o := a.NewOrder(1)
	check := func(what string, r apptest.RawResponse) {
		t.Helper()
		if err := r.Failure(); err != nil {
			t.Errorf("%s: %v", what, err)
		}
		checkCORS(t, what, r)
	}
	check("update_order", a.Call(apptest.RouteUpdate, a.Params(a.Message("update_order", o.Export(), nil))))
	check("PING", a.Call(apptest.RoutePing, map[string]any{"message": "PING", "pos_id": 1, "db_name": "shop"}))
	r := a.Call(apptest.RoutePoll, a.PollParams(0))
	check("poll with notifications", r)
	ns, err := apptest.ParsePoll(r)
	if err != nil || len(ns) == 0 {
		t.Fatalf("poll = %v, %v; want the PONG", ns, err)
	}
	check("poll timing out", a.Call(apptest.RoutePoll, a.PollParams(ns[len(ns)-1].ID)))
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	srv := newServer(t, apptest.Options{})
	a := apptest.NewTerminal(t, srv.URL, cfg("shop", 1, 1, 2))
	good := func(edit func(p, msg, data map[string]any)) map[string]any {
		o := a.NewOrder(1)
		msg := a.Message("update_order", o.Export(), nil)
		p := a.Params(msg)
		edit(p, msg, msg["data"].(map[string]any))
		return p
	}
	// Two params members (keys match without regard to case, the later
	// wins): the earlier one must still be valid JSON.
	goodParams, err := json.Marshal(good(func(_, _, _ map[string]any) {}))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		path   string
		raw    string // sent verbatim if not ""
		params any
		where  string // data.message must mention it
	}{
		{name: "invalid params before a valid Params", path: apptest.RouteUpdate, where: "not a JSON-RPC object",
			raw: `{"jsonrpc":"2.0","method":"call","params":{"a":tru},"Params":` + string(goodParams) + `,"id":1}`},
		{name: "malformed JSON", path: apptest.RouteUpdate, raw: `{"jsonrpc":"2.0","method":"call","params":{"multi_session_id":1,`},
		{name: "array body", path: apptest.RouteUpdate, raw: `[1,2,3]`},
		{name: "invalid params", path: apptest.RouteUpdate, where: "at byte 8 of params",
			raw: `{"jsonrpc":"2.0","method":"call","params":{"a":tru},"id":1}`},
		{name: "invalid poll params", path: apptest.RoutePoll, where: "at byte 16 of params",
			raw: `{"jsonrpc":"2.0","method":"call","params":{"channels":[tru],"last":0},"id":1}`},
		{name: "trailing garbage", path: apptest.RouteUpdate, where: "at byte 37 of the body",
			raw: `{"jsonrpc":"2.0","params":{},"id":1} xyz`},
		{name: "string body", path: apptest.RoutePing, raw: `"PING"`},
		{name: "empty body", path: apptest.RoutePoll, raw: ` `},
		{name: "invalid UTF-8 in a note", path: apptest.RouteUpdate, where: "not valid UTF-8 at byte 85",
			raw: "{\"jsonrpc\":\"2.0\",\"method\":\"call\",\"params\":{\"multi_session_id\":1,\"message\":{\"note\":\"ab\xff\xfecd\"}}}"},
		{name: "params not an object", path: apptest.RouteUpdate, params: []any{1}, where: "params"},
		{name: "multi_session_id string", path: apptest.RouteUpdate, where: "params.multi_session_id",
			params: good(func(p, _, _ map[string]any) { p["multi_session_id"] = "x" })},
		{name: "user_ID string", path: apptest.RouteUpdate, where: "params.user_ID",
			params: good(func(p, _, _ map[string]any) { p["user_ID"] = "two" })},
		{name: "no dbname", path: apptest.RouteUpdate, where: "params.dbname",
			params: good(func(p, _, _ map[string]any) { delete(p, "dbname") })},
		{name: "message array", path: apptest.RouteUpdate, where: "params.message",
			params: good(func(p, _, _ map[string]any) { p["message"] = []any{"update_order"} })},
		{name: "no message.data", path: apptest.RouteUpdate, where: "params.message.data",
			params: good(func(_, m, _ map[string]any) { delete(m, "data") })},
		{name: "no run_ID", path: apptest.RouteUpdate, where: "params.message.data.run_ID",
			params: good(func(_, _, d map[string]any) { delete(d, "run_ID") })},
		{name: "no run_ID in unknown action", path: apptest.RouteUpdate, where: "params.message.data.run_ID",
			params: good(func(_, m, d map[string]any) { m["action"] = "x_custom"; delete(d, "run_ID") })},
		{name: "revision_ID object", path: apptest.RouteUpdate, where: "params.message.data.revision_ID",
			params: good(func(_, _, d map[string]any) { d["revision_ID"] = map[string]any{"n": 1} })},
		{name: "poll last string", path: apptest.RoutePoll, where: "params.last",
			params: map[string]any{"channels": []string{a.Channel("pos.longpolling")}, "last": "12"}},
		{name: "poll channels not a list", path: apptest.RoutePoll, where: "params.channels",
			params: map[string]any{"channels": a.Channel("pos.longpolling"), "last": 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var r apptest.RawResponse
			if tt.raw != "" {
				r = a.Do(http.MethodPost, tt.path, []byte(tt.raw), http.Header{"Content-Type": {"application/json"}})
			} else {
				r = a.Call(tt.path, tt.params)
			}
			if r.Err != nil || r.Status != http.StatusOK || r.DecodeErr != nil || r.Error == nil {
				t.Fatalf("POST %s = %d %v %v %.300s; want HTTP 200 with a JSON-RPC error", tt.path, r.Status, r.Err, r.DecodeErr, r.Body)
			}
			checkCORS(t, tt.name, r)
			e := r.Error
			if e.Code != "200" || e.Message != "Odoo Server Error" {
				t.Errorf("error code, message = %s, %q; want 200, \"Odoo Server Error\" (§2.3)", e.Code, e.Message)
			}
			name, _ := e.Data["name"].(string)
			msg, _ := e.Data["message"].(string)
			_, isArgs := e.Data["arguments"].([]any)
			_, isDebug := e.Data["debug"].(string)
			if name == "" || msg == "" || !isArgs || !isDebug {
				t.Errorf("error.data = %v; want string name and message, array arguments, string debug (§2.3)", e.Data)
			}
			if tt.where != "" && !strings.Contains(msg, tt.where) {
				t.Errorf("error.data.message = %q, want it to name %q", msg, tt.where)
			}
			if tt.raw == "" && fmt.Sprint(r.ID) != fmt.Sprint(r.RequestID) {
				t.Errorf("error answer id = %v, want the request's %d", r.ID, r.RequestID)
			}
		})
	}
	t.Cleanup(func() { stillServing(t, a) })
}

// A body over the limit gets HTTP 413 with a JSON body naming the limit;
// a body just under it is served; the server keeps serving.
func TestBodyTooLarge(t *testing.T) {
	t.Parallel()
	const limit = 64 << 10
	srv := newServer(t, apptest.Options{MaxBodyBytes: limit})
	a := apptest.NewTerminal(t, srv.URL, cfg("shop", 1, 1, 2))
	o := a.NewOrder(1)
	o["note"] = strings.Repeat("x", 2*limit)
	r := a.Call(apptest.RouteUpdate, a.Params(a.Message("update_order", o.Export(), nil)))
	if r.Err != nil || r.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized update = %d %v %.200s; want 413", r.Status, r.Err, r.Body)
	}
	checkCORS(t, "413", r)
	if r.DecodeErr != nil || !(strings.Contains(string(r.Body), "65536") || containsFold(string(r.Body), "64 KiB") || containsFold(string(r.Body), "64KiB")) {
		t.Errorf("413 body = %.300s (%v); want JSON naming the limit %d", r.Body, r.DecodeErr, limit)
	}
	o["note"] = strings.Repeat("y", limit-4096)
	update(t, a, o, revAnswer(o.UID(), 1, 1, 1))
	stillServing(t, a)

	// The same over a raw connection whose client reads the answer only
	// after it has sent the whole body (as over a real network, where the
	// answer and anything after it arrive together): the server must not
	// reset the connection with the body unread, or the client never sees
	// the 413 (a browser gets a network error and goes "offline", §2.3).
	body, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "method": "call", "id": 1,
		"params": a.Params(a.Message("update_order", map[string]any{"note": strings.Repeat("z", 2*limit)}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nOrigin: http://odoo.test\r\nContent-Length: %d\r\n\r\n",
		apptest.RouteUpdate, conn.RemoteAddr(), len(body))
	if _, err := conn.Write(append([]byte(req), body...)); err != nil {
		t.Fatalf("sending a %d-byte body: %v (server reset the connection while the client was sending)", len(body), err)
	}
	time.Sleep(100 * time.Millisecond) // the client reads late: models network latency, not synchronization
	_ = conn.SetReadDeadline(time.Now().Add(wait))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the answer to a %d-byte body after sending it: %v; want 413", len(body), err)
	}
	msg, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || err != nil {
		t.Errorf("raw oversized request: HTTP %d %q (%v), want 413", resp.StatusCode, msg, err)
	}
	// A server that closes with the body unread makes the kernel send RST
	// instead of FIN; a client still writing then gets "connection reset"
	// and may never read the 413 (Go's client reports the write error).
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("after the 413, the connection ends with %v, want a clean close (EOF): "+
			"the server must read (drain) a moderately oversized body before closing", err)
	}
}

// Decision 5, §9.3-1: unknown channels and non-string channel values are
// ignored, not an error.
func TestUnknownChannelsIgnored(t *testing.T) {
	t.Parallel()
	srv := newServer(t, apptest.Options{PollHold: 300 * time.Millisecond})
	a := apptest.NewTerminal(t, srv.URL, cfg("shop", 1, 1, 2))
	if _, err := a.Ping(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		channels []any
		pong     bool
	}{
		{"mixed", []any{"garbage", `["other","pos.longpolling","1"]`, 5, nil, map[string]any{"a": 1},
			[]any{"shop", "pos.longpolling", "1"}, a.Channel("pos.longpolling"), a.Channel("pos.multi_session")}, true},
		{"spaced variant", []any{`["shop", "pos.longpolling", "1"]`}, false}, // exact string match
		{"only unknown", []any{"bus.presence", 17, true}, false},
		{"empty", []any{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := a.Call(apptest.RoutePoll, map[string]any{"channels": tt.channels, "last": 0, "options": map[string]any{"bus_inactivity": 10}})
			ns, err := apptest.ParsePoll(r)
			if err != nil {
				t.Fatalf("poll with channels %v: %v", tt.channels, err)
			}
			want := 0
			if tt.pong {
				want = 1
			}
			if len(ns) != want || (want == 1 && !ns[0].IsPong()) {
				t.Errorf("poll with channels %v = %v, want %d PONG", tt.channels, ns, want)
			}
		})
	}
}

func TestWrongMethodAndPath(t *testing.T) {
	t.Parallel()
	srv := newServer(t, apptest.Options{})
	a := apptest.NewTerminal(t, srv.URL, cfg("shop", 1, 1, 2))
	for _, route := range routes {
		r := a.Do(http.MethodGet, route, nil, nil)
		ok := r.Status == http.StatusMethodNotAllowed || (r.Status == http.StatusOK && r.Error != nil)
		if r.Err != nil || !ok {
			t.Errorf("GET %s = %d %v %.200s; want 405 or a JSON-RPC error", route, r.Status, r.Err, r.Body)
		}
		checkCORS(t, "GET "+route, r)
	}
	for _, path := range []string{"/web/webclient/version_info", "/pos_multi_session_sync/update/x", "/longpolling/poll2"} {
		r := a.Call(path, map[string]any{})
		if r.Err != nil || r.Status != http.StatusNotFound {
			t.Errorf("POST %s = %d %v, want 404", path, r.Status, r.Err)
		}
		checkCORS(t, "POST "+path, r)
	}
	stillServing(t, a)
}
