package httpapi_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"possync/appliance"
	"possync/appliance/apptest"
)

// statusDoc is the part of GET /status.json the tests read (docs/status.md).
type statusDoc struct {
	Status        string `json:"status"`
	Reason        string `json:"reason"`
	Version       string `json:"version"`
	UptimeSeconds int64  `json:"uptime_seconds"`
	Disk          *struct {
		DataFreeBytes  uint64 `json:"data_free_bytes"`
		DataTotalBytes uint64 `json:"data_total_bytes"`
		StoreBytes     uint64 `json:"store_bytes"`
	} `json:"disk"`
	URLs []struct {
		URL  string `json:"url"`
		Kind string `json:"kind"`
	} `json:"urls"`
	MultiSessions []struct {
		DB              string        `json:"db"`
		ID              int64         `json:"id"`
		Run             int64         `json:"run"`
		LastOrderNumber int64         `json:"last_order_number"`
		OpenOrders      int64         `json:"open_orders"`
		TerminalsOnline int           `json:"terminals_online"`
		Terminals       []terminalDoc `json:"terminals"`
	} `json:"multi_sessions"`
	Warnings []struct {
		Kind    string `json:"kind"`
		Source  string `json:"source"`
		Message string `json:"message"`
		Count   int    `json:"count"`
	} `json:"warnings"`
	Totals struct {
		UpdatesAccepted   uint64 `json:"updates_accepted"`
		RevisionConflicts uint64 `json:"revision_conflicts"`
	} `json:"totals"`
}

type terminalDoc struct {
	POSID                int64  `json:"pos_id"`
	UserID               *int64 `json:"user_id"`
	Online               bool   `json:"online"`
	PollsWaiting         int    `json:"polls_waiting"`
	LastPollAgeSeconds   *int64 `json:"last_poll_age_seconds"`
	LastUpdateAgeSeconds *int64 `json:"last_update_age_seconds"`
}

func get(t *testing.T, url string) (int, http.Header, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, body
}

func getStatus(t *testing.T, srv *apptest.Server) (statusDoc, []byte) {
	t.Helper()
	code, h, body := get(t, srv.URL+"/status.json")
	if code != 200 || h.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /status.json = %d %q", code, h.Get("Content-Type"))
	}
	var d statusDoc
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatalf("status.json %s: %v", body, err)
	}
	return d, body
}

// waitStatus polls /status.json until ok holds (bounded by wait).
func waitStatus(t *testing.T, srv *apptest.Server, what string, ok func(statusDoc) bool) statusDoc {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		d, body := getStatus(t, srv)
		if ok(d) {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("status.json never showed %s; last:\n%s", what, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// scrape reads /metrics into sample → value, checking the text format.
func scrape(t *testing.T, srv *apptest.Server) (map[string]float64, string) {
	t.Helper()
	code, h, body := get(t, srv.URL+"/metrics")
	if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("GET /metrics = %d %q", code, h.Get("Content-Type"))
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	for sc.Scan() {
		line := sc.Text()
		if h, ok := strings.CutPrefix(line, "# HELP "); ok {
			if name, text, _ := strings.Cut(h, " "); strings.TrimSpace(text) == "" || strings.Contains(text, "see docs/status.md") {
				t.Errorf("metric family %s has no HELP text of its own", name)
			}
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			t.Fatalf("metrics line %q is not `sample value`", line)
		}
		if _, dup := out[line[:i]]; dup {
			t.Errorf("metrics sample %s appears twice", line[:i])
		}
		out[line[:i]] = v
	}
	return out, string(body)
}

func findSession(d statusDoc, db string, id int64) (int, bool) {
	for i, m := range d.MultiSessions {
		if m.DB == db && m.ID == id {
			return i, true
		}
	}
	return -1, false
}

// The status document and the metrics follow what the terminals do: two
// multi-sessions and their terminals, an order that raises the open-order
// count and the counters, a revision conflict and a refused request that
// show up as warnings and in their counters, and a terminal that stops
// polling turning offline. Order contents never appear.
func TestStatusJSONAndMetricsFollowTheTills(t *testing.T) {
	t.Parallel()
	srv := newServer(t, apptest.Options{OnlineWindow: time.Second})
	p1 := openPOS(t, srv, cfg("shop", 1, 1, 2))
	p2 := openPOS(t, srv, cfg("shop", 1, 2, 3))
	openPOS(t, srv, cfg("shop", 2, 3, 4))

	d := waitStatus(t, srv, "3 online terminals in 2 multi-sessions", func(d statusDoc) bool {
		n := 0
		for _, m := range d.MultiSessions {
			n += m.TerminalsOnline
		}
		return len(d.MultiSessions) == 2 && n == 3
	})
	if d.Status != "ok" || d.Reason != "" || d.Version != appliance.Version {
		t.Errorf("status = %q %q version %q, want ok, no reason, %s", d.Status, d.Reason, d.Version, appliance.Version)
	}
	if d.Disk == nil || d.Disk.DataFreeBytes == 0 || d.Disk.DataTotalBytes < d.Disk.DataFreeBytes {
		t.Errorf("disk = %+v, want free and total bytes of the data partition", d.Disk)
	}
	if len(d.URLs) == 0 || d.URLs[0].URL != srv.URL {
		t.Errorf("urls = %+v, want %s first (the listener's address)", d.URLs, srv.URL)
	}
	i, _ := findSession(d, "shop", 1)
	ms1 := d.MultiSessions[i]
	if len(ms1.Terminals) != 2 || ms1.Terminals[0].POSID != 1 || ms1.Terminals[1].POSID != 2 {
		t.Fatalf("shop/1 terminals = %+v, want POS 1 and 2", ms1.Terminals)
	}
	if u := ms1.Terminals[1].UserID; u == nil || *u != 3 {
		t.Errorf("POS 2 user_id = %v, want 3", u)
	}
	if a := ms1.Terminals[0].LastUpdateAgeSeconds; a == nil || *a < 0 || *a > 60 {
		t.Errorf("POS 1 last_update_age_seconds = %v, want a small age (sync_all just now)", a)
	}
	if ms1.OpenOrders != 0 || ms1.Run != 1 {
		t.Errorf("shop/1 before any order: open %d run %d, want 0 and 1", ms1.OpenOrders, ms1.Run)
	}

	before, _ := scrape(t, srv)
	o := p1.NewOrder(1)
	p1.AddLine(o, 50, 2, 4.8)
	o["note"] = "secret-note-4711"
	mustOK(t)(p1.UpdateOrder(o)) // server revision 1
	stale := maps.Clone(o)
	mustOK(t)(p1.UpdateOrder(o))                     // server revision 2
	if _, err := p2.UpdateOrder(stale); err != nil { // revision 1 again: a conflict
		t.Fatal(err)
	}
	resp, err := http.Post(srv.URL+apptest.RouteUpdate, "application/json", strings.NewReader("{not json"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	d = waitStatus(t, srv, "one open order in shop/1", func(d statusDoc) bool {
		i, ok := findSession(d, "shop", 1)
		return ok && d.MultiSessions[i].OpenOrders == 1
	})
	i, _ = findSession(d, "shop", 1)
	if d.MultiSessions[i].LastOrderNumber != 1 || d.Totals.UpdatesAccepted != 2 || d.Totals.RevisionConflicts != 1 {
		t.Errorf("after one order (two revisions) and one conflict: last order %d, totals %+v", d.MultiSessions[i].LastOrderNumber, d.Totals)
	}
	kinds := map[string]string{}
	for _, w := range d.Warnings {
		kinds[w.Kind] = w.Source + ": " + w.Message
	}
	if !strings.HasPrefix(kinds["conflict"], "shop/1 POS 2: update_order "+o.UID()) {
		t.Errorf("conflict warning = %q, want one from shop/1 POS 2 naming %s", kinds["conflict"], o.UID())
	}
	if !strings.HasPrefix(kinds["refused"], "127.0.0.1: POST "+apptest.RouteUpdate) {
		t.Errorf("refused warning = %q, want one from 127.0.0.1 naming the route", kinds["refused"])
	}

	after, text := waitMetrics(t, srv, func(m map[string]float64) bool {
		return m["possync_publish_to_answer_seconds_count"] > before["possync_publish_to_answer_seconds_count"]
	})
	for _, c := range []struct {
		sample string
		delta  float64
	}{
		{"possync_orders_accepted_total", 2},
		{"possync_revision_conflicts_total", 1},
		{`possync_http_requests_total{route="update",outcome="ok"}`, 3},
		{`possync_http_requests_total{route="update",outcome="refused"}`, 1},
		{`possync_rpc_errors_total{code="invalid"}`, 1},
		{`possync_refused_requests_total{rule="invalid_request"}`, 1},
		{"possync_commit_seconds_count", 2},
		{"possync_open_orders", 1},
	} {
		if got := after[c.sample] - before[c.sample]; got != c.delta {
			t.Errorf("%s moved by %v, want %v", c.sample, got, c.delta)
		}
	}
	for _, sample := range []string{"possync_notifications_delivered_total", "possync_notifications_published_total",
		`possync_commit_seconds_bucket{le="+Inf"}`} {
		if after[sample] <= before[sample] {
			t.Errorf("%s = %v, want above %v", sample, after[sample], before[sample])
		}
	}
	for _, want := range []string{
		"# TYPE possync_http_requests_total counter", "# TYPE possync_commit_seconds histogram",
		"# TYPE possync_publish_to_answer_seconds histogram", "# TYPE possync_polls_waiting gauge",
		"# TYPE possync_badger_vlog_gc_runs_total counter", "# TYPE possync_data_free_bytes gauge",
		fmt.Sprintf(`possync_build_info{version=%q,`, appliance.Version), "possync_store_bytes ",
		`possync_terminals{state="online"} 3`, "possync_multi_sessions 2",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if after["possync_polls_waiting"] < 1 || after["possync_data_free_bytes"] == 0 {
		t.Errorf("polls_waiting %v, data_free_bytes %v: want a waiting poll and the free space",
			after["possync_polls_waiting"], after["possync_data_free_bytes"])
	}

	p2.StopPolling()
	d = waitStatus(t, srv, "POS 2 offline", func(d statusDoc) bool {
		i, ok := findSession(d, "shop", 1)
		return ok && len(d.MultiSessions[i].Terminals) == 2 && !d.MultiSessions[i].Terminals[1].Online
	})
	i, _ = findSession(d, "shop", 1)
	if p := d.MultiSessions[i].Terminals[1]; p.PollsWaiting != 0 || p.LastPollAgeSeconds == nil {
		t.Errorf("POS 2 after it stopped polling = %+v, want no waiting poll and a last poll age", p)
	}
	if !d.MultiSessions[i].Terminals[0].Online {
		t.Errorf("POS 1 went offline too: %+v", d.MultiSessions[i].Terminals[0])
	}

	_, _, page := get(t, srv.URL+"/")
	_, js := getStatus(t, srv)
	for what, b := range map[string][]byte{"status page": page, "status.json": js} {
		if strings.Contains(string(b), "secret-note-4711") || strings.Contains(string(b), "product_id") {
			t.Errorf("%s shows order contents", what)
		}
	}
}

func waitMetrics(t *testing.T, srv *apptest.Server, ok func(map[string]float64) bool) (map[string]float64, string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		m, text := scrape(t, srv)
		if ok(m) || time.Now().After(deadline) {
			return m, text
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The HTML page is what shop staff see: health in one word, the
// multi-sessions with their tills, a QR code per URL, accessible markup,
// and it still says what it shows without scripting.
func TestStatusPageShowsTillsAndHowToConnect(t *testing.T) {
	t.Parallel()
	srv := newServer(t, apptest.Options{})
	openPOS(t, srv, cfg("shop", 1, 7, 2))
	waitStatus(t, srv, "POS 7 online", func(d statusDoc) bool {
		return len(d.MultiSessions) == 1 && d.MultiSessions[0].TerminalsOnline == 1
	})

	code, h, body := get(t, srv.URL+"/")
	if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/html") || h.Get("Cache-Control") != "no-store" {
		t.Fatalf("GET / = %d %q %q", code, h.Get("Content-Type"), h.Get("Cache-Control"))
	}
	page := string(body)
	for _, want := range []string{
		`<html lang="en">`, `name="viewport"`, `<h1>`, `Healthy`, appliance.Version,
		`shop · multi-session 1`, `<strong class="open">0 open orders</strong>`, `1 of 1 tills online`,
		`<th role="columnheader" scope="col">POS</th>`, `<th role="rowheader" scope="row" data-label="POS">7</th>`,
		`<td role="cell" data-label="User">2</td>`, `<td role="cell" data-label="State" class="state">online</td>`,
		`<table role="table">`, `<tr role="row" class="on" data-pos="7">`,
		"Sync Server", "<code>" + srv.URL + "</code>", `<svg xmlns="http://www.w3.org/2000/svg"`, `aria-label="QR code of ` + srv.URL + `"`,
		`1 of 1 till online · 0 open orders`, `<td role="cell" data-label="Last poll">waiting now</td>`,
		`<noscript>`, `fetch('/status.json'`, "Free on data partition", "Store size",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("status page lacks %q", want)
		}
	}
	for _, banned := range []string{`src="http`, `href="http`, `rel="stylesheet"`} {
		if strings.Contains(page, banned) {
			t.Errorf("status page loads an external asset (%q)", banned)
		}
	}
}

// /healthz keeps its shape; the Private Network Access opt-in is what a
// public Odoo origin needs to reach a LAN box (README "HTTPS").
func TestHealthzAndPrivateNetworkPreflight(t *testing.T) {
	t.Parallel()
	srv := newServer(t, apptest.Options{})
	openPOS(t, srv, cfg("shop", 1, 7, 2))

	resp, err := http.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Status   string `json:"status"`
		Sessions int    `json:"sessions"`
	}
	err = json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || h.Status != "ok" || h.Sessions != 1 {
		t.Errorf("GET /healthz = %d %+v %v, want 200 ok with 1 session", resp.StatusCode, h, err)
	}

	req, _ := http.NewRequest(http.MethodOptions, srv.URL+apptest.RouteUpdate, nil)
	req.Header.Set("Origin", "https://odoo.example.com")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Private-Network", "true")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Private-Network") != "true" {
		t.Errorf("private-network preflight = %d, Allow-Private-Network %q; want 204 and true",
			resp.StatusCode, resp.Header.Get("Access-Control-Allow-Private-Network"))
	}
}
