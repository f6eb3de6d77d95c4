package httpapi_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"possync/appliance/apptest"
)

// logBuffer collects a server's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines returns the log lines containing every one of parts.
func (b *logBuffer) lines(parts ...string) []string {
	var out []string
	for _, l := range strings.Split(b.String(), "\n") {
		ok := l != ""
		for _, p := range parts {
			ok = ok && strings.Contains(l, p)
		}
		if ok {
			out = append(out, l)
		}
	}
	return out
}

func newLogged(t *testing.T, opts apptest.Options) (*apptest.Server, *logBuffer) {
	t.Helper()
	lb := &logBuffer{}
	opts.Logger = slog.New(slog.NewTextHandler(lb, nil))
	return newServer(t, opts), lb
}

// answer is an HTTP answer read in full.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// rpcErr is the error member of a JSON-RPC answer.
func (a answer) rpcErr(t *testing.T) (name, msg string) {
	t.Helper()
	var v struct {
		Error struct {
			Code int
			Data struct {
				Name      string
				Message   string
				Arguments []string
				Debug     string
			}
		}
	}
	if err := json.Unmarshal(a.body, &v); err != nil {
		t.Fatalf("answer %d %q is not JSON: %v", a.status, a.body, err)
	}
	if len(v.Error.Data.Arguments) == 0 || v.Error.Data.Debug == "" {
		t.Errorf("JSON-RPC error %s lacks data.arguments or data.debug (§2.3)", a.body)
	}
	return v.Error.Data.Name, v.Error.Data.Message
}

// do sends one request over a new connection, from local (nil = any).
func do(t *testing.T, local net.Addr, method, url, body string, header map[string]string) answer {
	t.Helper()
	d := &net.Dialer{LocalAddr: local, Timeout: wait}
	c := &http.Client{Timeout: wait, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read answer of %s %s: %v", method, url, err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: b}
}

// Bodies of the three POS routes, as the Odoo 12 client sends them.
func syncAllBody(db string, ms, pos int64) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","method":"call","id":1,"params":{"multi_session_id":%d,"dbname":%q,"user_ID":2,`+
		`"message":{"action":"sync_all","data":{"pos_id":%d,"run_ID":1,"login_number":1},"session_id":%d,"login_number":1}}}`, ms, db, pos, 100+pos)
}

func pingBody(db string, pos int64) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","method":"call","id":2,"params":{"message":"PING","pos_id":%d,"db_name":%q}}`, pos, db)
}

func pollBody(db string, pos int64) string {
	ch := func(name string) string {
		b, _ := json.Marshal(fmt.Sprintf(`[%q,%q,"%d"]`, db, name, pos))
		return string(b)
	}
	return fmt.Sprintf(`{"jsonrpc":"2.0","method":"call","id":3,"params":{"channels":[%s,%s],"last":0}}`,
		ch("pos.longpolling"), ch("pos.multi_session"))
}

// refusedCount reads possync_refused_requests_total{rule} from /metrics.
func refusedCount(t *testing.T, local net.Addr, base, rule string) string {
	t.Helper()
	a := do(t, local, "GET", base+"/metrics", "", nil)
	want := fmt.Sprintf(`possync_refused_requests_total{rule=%q} `, rule)
	for _, l := range strings.Split(string(a.body), "\n") {
		if v, ok := strings.CutPrefix(l, want); ok {
			return v
		}
	}
	t.Fatalf("/metrics (%d) has no %s", a.status, want)
	return ""
}

func tcpFrom(ip string) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip)} }

// TestAccessNetworks: a client outside security.allowed_networks gets 403
// with a JSON-RPC error naming the rule and its address, before its body is
// read, on every route including /metrics and /status.json; an allowed one
// is served. The server listens on a dual-stack socket, so IPv4 clients
// arrive as ::ffff:127.0.0.x and must be matched as IPv4.
func TestAccessNetworks(t *testing.T) {
	ln, err := net.Listen("tcp", "[::]:0")
	if err != nil {
		t.Skipf("no dual-stack socket here: %v", err)
	}
	ln.Close()
	srv, logs := newLogged(t, apptest.Options{Addr: "[::]:0", AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	base := strings.Replace(srv.URL, "[::]", "127.0.0.1", 1)
	inside, outside := tcpFrom("127.0.0.1"), tcpFrom("127.0.0.2")

	for _, path := range []string{"/pos_multi_session_sync/update", "/pos_longpolling/update", "/longpolling/poll", "/status.json", "/metrics", "/healthz", "/"} {
		a := do(t, outside, "POST", base+path, syncAllBody("shop", 1, 1), nil)
		if a.status != http.StatusForbidden {
			t.Fatalf("POST %s from 127.0.0.2 = %d %s, want 403", path, a.status, a.body)
		}
		name, msg := a.rpcErr(t)
		if name != "werkzeug.exceptions.Forbidden" || !strings.Contains(msg, "127.0.0.2 is not in security.allowed_networks (127.0.0.1/32)") {
			t.Errorf("POST %s from 127.0.0.2: error %q %q, want Forbidden naming 127.0.0.2 and the configured security.allowed_networks", path, name, msg)
		}
		if strings.Contains(string(a.body), "open_orders") {
			t.Errorf("refused %s leaks status: %s", path, a.body)
		}
	}
	if a := do(t, inside, "POST", base+"/pos_multi_session_sync/update", syncAllBody("shop", 1, 1), nil); a.status != 200 || !strings.Contains(string(a.body), `"result"`) {
		t.Fatalf("sync_all from 127.0.0.1 = %d %s, want 200 with a result", a.status, a.body)
	}
	if got := refusedCount(t, inside, base, "network"); got != "7" {
		t.Errorf("possync_refused_requests_total{rule=network} = %s, want 7", got)
	}
	if got := logs.lines("refused request", "rule=network", "remote=127.0.0.2"); len(got) != 1 {
		t.Errorf("refusal log lines for 127.0.0.2 = %d, want 1 (once a minute per source and rule):\n%s", len(got), strings.Join(got, "\n"))
	} else {
		t.Logf("logged: %s", got[0])
	}
}

// TestAccessOrigins: with security.allowed_origins set, a preflight or
// request with another Origin (or "null") gets 403 and no CORS grant; the
// allowed origin is echoed; a request without Origin is served.
func TestAccessOrigins(t *testing.T) {
	const shop = "https://shop.example.com"
	srv, logs := newLogged(t, apptest.Options{AllowedOrigins: []string{shop}})
	update := srv.URL + "/pos_multi_session_sync/update"

	for _, tt := range []struct {
		name, method, origin string
		status               int
		acao                 string
	}{
		{"foreign preflight", "OPTIONS", "https://evil.example", 403, ""},
		{"foreign request", "POST", "https://evil.example", 403, ""},
		{"null origin", "POST", "null", 403, ""},
		{"allowed preflight", "OPTIONS", shop, 204, shop},
		{"allowed request", "POST", "https://Shop.Example.com", 200, "https://Shop.Example.com"},
		{"no origin", "POST", "", 200, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := map[string]string{}
			if tt.origin != "" {
				h["Origin"] = tt.origin
			}
			if tt.method == "OPTIONS" {
				h["Access-Control-Request-Method"] = "POST"
			}
			a := do(t, nil, tt.method, update, syncAllBody("shop", 1, 1), h)
			if a.status != tt.status {
				t.Fatalf("%s Origin %q = %d %s, want %d", tt.method, tt.origin, a.status, a.body, tt.status)
			}
			if got := a.header.Get("Access-Control-Allow-Origin"); got != tt.acao {
				t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, tt.acao)
			}
			if tt.status == 403 {
				if _, msg := a.rpcErr(t); !strings.Contains(msg, tt.origin) || !strings.Contains(msg, "security.allowed_origins") {
					t.Errorf("error message %q does not name %q and security.allowed_origins", msg, tt.origin)
				}
			}
		})
	}
	if got := refusedCount(t, nil, srv.URL, "origin"); got != "3" {
		t.Errorf("possync_refused_requests_total{rule=origin} = %s, want 3", got)
	}
	if got := logs.lines("refused request", "rule=origin"); len(got) != 1 {
		t.Errorf("origin refusal log lines = %d, want 1 (once a minute per source and rule):\n%s", len(got), strings.Join(got, "\n"))
	} else {
		t.Logf("logged: %s", got[0])
	}
}

// TestAccessDatabases: with security.allowed_databases set, an update, a
// PING and a poll naming another database's channel are refused with 403
// naming the database; the allowed database works end to end, and the
// status page lists it.
func TestAccessDatabases(t *testing.T) {
	srv, logs := newLogged(t, apptest.Options{AllowedDatabases: []string{"shop"}})
	for _, tt := range []struct{ path, body string }{
		{"/pos_multi_session_sync/update", syncAllBody("other", 1, 1)},
		{"/pos_longpolling/update", pingBody("other", 1)},
		{"/longpolling/poll", pollBody("other", 1)},
	} {
		a := do(t, nil, "POST", srv.URL+tt.path, tt.body, map[string]string{"Origin": "http://odoo.lan"})
		if a.status != 403 {
			t.Fatalf("POST %s for database other = %d %s, want 403", tt.path, a.status, a.body)
		}
		if name, msg := a.rpcErr(t); name != "werkzeug.exceptions.Forbidden" || !strings.Contains(msg, `"other"`) || !strings.Contains(msg, "security.allowed_databases") {
			t.Errorf("POST %s: error %q %q, want Forbidden naming \"other\" and security.allowed_databases", tt.path, name, msg)
		}
		if a.header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("POST %s: refusal without CORS: the POS could not read it", tt.path)
		}
	}
	// A poll mixing an allowed and a refused database is refused whole.
	mixed := strings.Replace(pollBody("shop", 1), `\"shop\",\"pos.multi_session\"`, `\"other\",\"pos.multi_session\"`, 1)
	if a := do(t, nil, "POST", srv.URL+"/longpolling/poll", mixed, nil); a.status != 403 {
		t.Errorf("poll naming shop and other channels = %d %s, want 403", a.status, a.body)
	}

	term := openPOS(t, srv, cfg("shop", 1, 1, 2))
	o := term.NewOrder(1)
	update(t, term, o, revAnswer(o.UID(), 1, 1, 1))

	var st struct {
		Databases        []string `json:"databases"`
		AllowedDatabases []string `json:"allowed_databases"`
	}
	if err := json.Unmarshal(do(t, nil, "GET", srv.URL+"/status.json", "", nil).body, &st); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(st.Databases) != "[shop]" || fmt.Sprint(st.AllowedDatabases) != "[shop]" {
		t.Errorf("status.json databases %v, allowed %v; want [shop] and [shop]", st.Databases, st.AllowedDatabases)
	}
	if got := refusedCount(t, nil, srv.URL, "database"); got != "4" {
		t.Errorf("possync_refused_requests_total{rule=database} = %s, want 4", got)
	}
	if got := logs.lines("refused request", "rule=database"); len(got) != 1 {
		t.Errorf("database refusal log lines = %d, want 1:\n%s", len(got), strings.Join(got, "\n"))
	} else {
		if !strings.Contains(got[0], " value=") || strings.Contains(got[0], ` value="" `) {
			t.Errorf("%s refusal log line has no value: %s", "database", got[0])
		}
		t.Logf("logged: %s", got[0])
	}
}

// TestHeaderTimeout: a client that sends its request head slowly is cut
// off after http.header_timeout although read_timeout is far longer, while
// another client is served meanwhile; a slow body and a parked long-poll
// outlast the header timeout.
func TestHeaderTimeout(t *testing.T) {
	srv := newServer(t, apptest.Options{HeaderTimeout: time.Second, ReadTimeout: time.Minute, PollHold: 3 * time.Second})
	addr := strings.TrimPrefix(srv.URL, "http://")

	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	cut := make(chan time.Duration, 1)
	go func() {
		start := time.Now()
		_, _ = io.WriteString(slow, "POST /pos_longpolling/update HTTP/1.1\r\nHost: box\r\n")
		for time.Since(start) < 30*time.Second {
			if _, err := fmt.Fprintf(slow, "X-Slow-%d: 1\r\n", time.Now().UnixNano()); err != nil {
				break
			}
			_ = slow.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			var b [1]byte
			if _, err := slow.Read(b[:]); err == nil || !isTimeout(err) {
				break // the server answered or closed: cut off
			}
		}
		cut <- time.Since(start)
	}()

	// Served meanwhile, on another connection.
	if a := do(t, nil, "POST", srv.URL+"/pos_longpolling/update", pingBody("shop", 1), nil); a.status != 200 {
		t.Errorf("ping while a slow client trickles headers = %d %s", a.status, a.body)
	}
	// A poll parked for 3 s (> header timeout) is answered, not cut.
	if a := do(t, nil, "POST", srv.URL+"/longpolling/poll", `{"jsonrpc":"2.0","id":9,"params":{"channels":["x"],"last":999999}}`, nil); a.status != 200 || !strings.Contains(string(a.body), `"result":[]`) {
		t.Errorf("parked poll = %d %s, want 200 []", a.status, a.body)
	}
	// A body sent slowly over more than the header timeout is read.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := pingBody("shop", 1)
	fmt.Fprintf(c, "POST /pos_longpolling/update HTTP/1.1\r\nHost: box\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
	for i := 0; i < len(body); i += len(body)/6 + 1 {
		time.Sleep(400 * time.Millisecond)
		_, _ = io.WriteString(c, body[i:min(i+len(body)/6+1, len(body))])
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("slow body: %v %v, want 200", resp, err)
	}

	select {
	case d := <-cut:
		if d >= 30*time.Second {
			t.Errorf("slow-loris client still connected after %v", d)
		}
		t.Logf("slow-loris client cut after %v", d.Round(time.Millisecond))
	case <-time.After(time.Minute):
		t.Fatal("slow-loris client never cut off")
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
