package httpapi_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"possync/appliance/apptest"
)

// Field report (QA of issue 7.2): idle keep-alive sockets (a browser keeps
// several per host) and sockets that never send a request held
// http.max_conns slots until a timeout, so a few browsers locked every till
// out with ServerBusy. At the limit the connection idle longest is closed
// for the newcomer; a waiting long-poll is never idle.
func TestIdleConnectionsMakeRoom(t *testing.T) {
	t.Parallel()
	const max = 16
	srv := newServer(t, apptest.Options{PollHold: 50 * time.Second, MaxConns: max})
	addr := strings.TrimPrefix(srv.URL, "http://")

	// 4 waiting polls (busy), 8 keep-alive sockets that did one request and
	// sit idle, 4 sockets that never send anything: the limit is full.
	var polls []net.Conn
	for i := range 4 {
		polls = append(polls, startPoll(t, srv.URL, nil, fmt.Sprintf(`["shop","pos.longpolling","%d"]`, i)))
	}
	waitHealth(t, srv.URL, wait, "4 polls waiting", func(h health, code int) bool { return code == 200 && h.Waiting == 4 })
	for range 8 {
		c := dial(t, addr)
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp, _ := readAnswer(t, c, wait); resp.StatusCode != 200 {
			t.Fatalf("keep-alive /healthz = %d", resp.StatusCode)
		}
		_ = c.SetReadDeadline(time.Time{})
	}
	for range 4 {
		dial(t, addr)
	}
	time.Sleep(1500 * time.Millisecond) // older than minIdleEvict

	// 12 new keep-alive clients are served (each stays connected): each
	// takes the slot of an old idle socket, both kinds.
	for i := range 12 {
		c := dial(t, addr)
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp, body := readAnswer(t, c, wait); resp.StatusCode != 200 {
			t.Fatalf("client %d at the limit = %d %s; want 200 (an idle connection closed for it)", i, resp.StatusCode, body)
		}
	}
	// Now only waiting polls and sockets idle for less than a second hold
	// the slots: the next client is refused.
	c := dial(t, addr)
	fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, _ := readAnswer(t, c, wait); resp.StatusCode != 503 {
		t.Errorf("client beyond the limit with nothing idle for long = %d, want 503", resp.StatusCode)
	}
	// The waiting polls were not touched.
	for i, p := range polls {
		_ = p.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		var b [1]byte
		if n, err := p.Read(b[:]); n > 0 || !isTimeout(err) {
			t.Errorf("poll %d was answered or closed (%d bytes, %v); a waiting poll is never idle", i, n, err)
		}
	}
	time.Sleep(1500 * time.Millisecond) // the 12 clients are idle long enough now
	if h, _ := waitHealth(t, srv.URL, wait, "served again", func(h health, code int) bool { return code == 200 }); h.Waiting != 4 || h.IdleClosed < 12 {
		t.Errorf("/healthz = %+v, want 4 waiting polls and ≥ 12 idle connections closed", h)
	}
}

// A CORS preflight refused for lack of connections must still be granted:
// a preflight that is not 2xx fails in the browser as an opaque network
// error, and the POS could not show the ServerBusy answer of the request
// that follows.
func TestRefusedPreflightIsGranted(t *testing.T) {
	t.Parallel()
	const max = 4
	srv := newServer(t, apptest.Options{PollHold: 50 * time.Second, MaxConns: max})
	for i := range max {
		startPoll(t, srv.URL, spreadFrom(i), fmt.Sprintf(`["shop","pos.longpolling","%d"]`, i))
	}
	waitHealth(t, srv.URL, wait, "full", func(h health, code int) bool { return code == 503 && h.Status == "" })

	req, _ := http.NewRequest(http.MethodOptions, srv.URL+apptest.RouteUpdate, nil)
	req.Header.Set("Origin", "https://shop.example.com")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "content-type,x-debug-mode")
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("preflight at the limit: %v", err)
	}
	resp.Body.Close()
	h := resp.Header
	if resp.StatusCode/100 != 2 || h.Get("Access-Control-Allow-Origin") != "*" ||
		!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") ||
		!strings.Contains(strings.ToLower(h.Get("Access-Control-Allow-Headers")), "x-debug-mode") {
		t.Errorf("preflight at the limit = %d %v; want 2xx granting POST, Content-Type and X-Debug-Mode", resp.StatusCode, h)
	}
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Over HTTPS the served connection is a *tls.Conn around the listener's
// own: a waiting TLS poll must count as busy too, and idle TLS sockets make
// room for newcomers.
func TestIdleTLSConnectionsMakeRoom(t *testing.T) {
	t.Parallel()
	const max = 4
	srv := newServer(t, apptest.Options{TLS: true, PollHold: 50 * time.Second, MaxConns: max})
	addr := strings.TrimPrefix(srv.TLSURL, "https://")
	cfg := &tls.Config{RootCAs: srv.RootCAs}
	poll, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { poll.Close() })
	body := `{"jsonrpc":"2.0","method":"call","params":{"channels":["[\"db\",\"pos.multi_session\",\"1\"]"],"last":0,"options":{}},"id":1}`
	fmt.Fprintf(poll, "POST /longpolling/poll HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	waitTLSHealth(t, srv, func(st map[string]any) bool { return st["waiting_polls"].(float64) == 1 }, "the poll parked")
	get := func() int {
		c, err := tls.Dial("tcp", addr, cfg)
		if err != nil {
			return 0 // refused at the limit: closed without an answer
		}
		t.Cleanup(func() { c.Close() })
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		_ = c.SetReadDeadline(time.Now().Add(wait))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		_ = c.SetReadDeadline(time.Time{})
		return resp.StatusCode
	}
	for i := range max - 1 { // fill the limit with idle keep-alive sockets
		if code := get(); code != 200 {
			t.Fatalf("client %d below the limit = %d", i, code)
		}
	}
	time.Sleep(1500 * time.Millisecond)
	for i := range 6 {
		if code := get(); code != 200 {
			t.Fatalf("client %d at the limit = %d, want 200 (an idle TLS connection closed for it)", i, code)
		}
		time.Sleep(1100 * time.Millisecond) // the new one becomes the oldest idle next
	}
	waitTLSHealth(t, srv, func(st map[string]any) bool {
		return st["waiting_polls"].(float64) == 1 && st["idle_conns_closed"].(float64) >= 6
	}, "the TLS poll still waiting and 6 idle connections closed")
}
