package httpapi_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"possync/appliance/apptest"
)

// newTLSServer starts a server with HTTPS on (local CA, 127.0.0.1).
func newTLSServer(t testing.TB) *apptest.Server {
	t.Helper()
	return newServer(t, apptest.Options{TLS: true})
}

// TestTLSRoundTrip: two tills over https:// with the box's CA trusted:
// an order update by one reaches the other's long-poll; a real TLS
// handshake against the certificate issued for 127.0.0.1.
func TestTLSRoundTrip(t *testing.T) {
	srv := newTLSServer(t)
	ca, cb := cfg("db", 1, 1, 1), cfg("db", 1, 2, 2)
	ca.RootCAs, cb.RootCAs = srv.RootCAs, srv.RootCAs
	a := openPOS(t, &apptest.Server{URL: srv.TLSURL}, ca)
	b := openPOS(t, &apptest.Server{URL: srv.TLSURL}, cb)
	o := a.NewOrder(1)
	update(t, a, o, revAnswer(o.UID(), 1, 1, 1))
	if _, _, err := b.WaitAction(wait, "update_order", o.UID()); err != nil {
		t.Fatalf("over https the other till did not get the order: %v", err)
	}
}

// TestTLSUntrustedRefused: without the CA the handshake fails; the server
// presents a certificate of the local CA, not some other.
func TestTLSUntrustedRefused(t *testing.T) {
	srv := newTLSServer(t)
	_, err := http.Get(srv.TLSURL + "/healthz")
	var uerr x509.UnknownAuthorityError
	if err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Fatalf("GET without the CA = %v, want %T", err, uerr)
	}
}

// TestTLSPollsKeepAlive: consecutive long-polls over HTTPS reuse one
// connection (one handshake), like over plain HTTP.
func TestTLSPollsKeepAlive(t *testing.T) {
	srv := newTLSServer(t)
	var dials atomic.Int32
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: srv.RootCAs},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}}
	defer client.CloseIdleConnections()
	body := `{"jsonrpc":"2.0","method":"call","params":{"channels":["db[\"db\",\"pos.multi_session\",1]"],"last":0,"options":{}},"id":1}`
	for i := range 3 {
		resp, err := client.Post(srv.TLSURL+"/longpolling/poll", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatalf("poll %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), `"result":[`) {
			t.Fatalf("poll %d = %d %s, want 200 with a result", i, resp.StatusCode, b)
		}
		if resp.TLS == nil {
			t.Fatal("answer not over TLS")
		}
	}
	if n := dials.Load(); n != 1 {
		t.Errorf("3 polls took %d connections, want 1 (keep-alive)", n)
	}
}

// TestTLSAbortedPollReleased: a client that leaves a parked poll over TLS
// (close_notify then FIN: data the watcher sees before the end of stream)
// gets its poll released by the poll watcher, as over plain HTTP.
func TestTLSAbortedPollReleased(t *testing.T) {
	srv := newServer(t, apptest.Options{TLS: true, PollHold: 50 * time.Second})
	addr := strings.TrimPrefix(srv.TLSURL, "https://")
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: srv.RootCAs})
	if err != nil {
		t.Fatal(err)
	}
	body := `{"jsonrpc":"2.0","method":"call","params":{"channels":["db[\"db\",\"pos.multi_session\",1]"],"last":1000000,"options":{}},"id":1}`
	fmt.Fprintf(c, "POST /longpolling/poll HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", addr, len(body), body)
	waitTLSHealth(t, srv, func(st map[string]any) bool { return st["waiting_polls"].(float64) == 1 }, "the poll parked")
	c.Close() // close_notify, then FIN
	waitTLSHealth(t, srv, func(st map[string]any) bool {
		return st["waiting_polls"].(float64) == 0 && st["polls_released_client_gone"].(float64) == 1
	}, "the aborted TLS poll released")
}

// waitTLSHealth polls /healthz (plain HTTP) until ok(status) or the test wait.
func waitTLSHealth(t *testing.T, srv *apptest.Server, ok func(map[string]any) bool, what string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	var st map[string]any
	for time.Now().Before(deadline) {
		resp, err := http.Get(srv.URL + "/healthz")
		if err == nil {
			st = nil
			_ = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
			if st != nil && ok(st) {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("not %s within %v: /healthz = %v", what, wait, st)
}

// TestTLSCertSwapWhileServing: a certificate re-issued for a new address
// is presented by the next handshake, without a restart; an open
// connection keeps working.
func TestTLSCertSwapWhileServing(t *testing.T) {
	srv := newTLSServer(t)
	addr := strings.TrimPrefix(srv.TLSURL, "https://")
	old, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: srv.RootCAs})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if _, err := srv.Cert.Update([]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1), net.ParseIP("192.0.2.7")}); err != nil {
		t.Fatal(err)
	}
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: srv.RootCAs, ServerName: "192.0.2.7"})
	if err != nil {
		t.Fatalf("handshake for the new address: %v", err)
	}
	c.Close()
	fmt.Fprintf(old, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	line, err := bufio.NewReader(old).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
		t.Fatalf("old connection after the swap: %q, %v", line, err)
	}
}

// TestCACertServed: GET /ca.crt over plain HTTP (a till that does not yet
// trust the CA) and HTTPS gives the CA certificate and never a key.
func TestCACertServed(t *testing.T) {
	srv := newTLSServer(t)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: srv.RootCAs}}}
	for _, base := range []string{srv.URL, srv.TLSURL} {
		resp, err := client.Get(base + "/ca.crt")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != string(srv.CA.PEM) || strings.Contains(string(b), "PRIVATE") {
			t.Errorf("GET %s/ca.crt = %d %q, want the CA certificate", base, resp.StatusCode, b)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/x-x509-ca-cert" {
			t.Errorf("Content-Type = %q", ct)
		}
	}
	resp, err := http.Get(srv.URL + "/status.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		CACert string `json:"ca_cert"`
		URLs   []struct{ URL string }
	}
	_ = json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if doc.CACert != "/ca.crt" {
		t.Errorf("status.json ca_cert = %q, want /ca.crt", doc.CACert)
	}
	var urls []string
	for _, u := range doc.URLs {
		urls = append(urls, u.URL)
	}
	if !slices.Contains(urls, srv.TLSURL) || !slices.Contains(urls, srv.URL) {
		t.Errorf("status.json urls = %v, want %s and %s", urls, srv.URL, srv.TLSURL)
	}
	page, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	html, _ := io.ReadAll(page.Body)
	page.Body.Close()
	for _, want := range []string{`href="/ca.crt"`, "iPad", "Android", "ChromeOS", "Windows", "macOS", "Linux"} {
		if !strings.Contains(string(html), want) {
			t.Errorf("status page lacks %q", want)
		}
	}
	plain := newServer(t, apptest.Options{})
	resp, err = http.Get(plain.URL + "/ca.crt")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("GET /ca.crt without a CA = %d, want 404", resp.StatusCode)
	}
}
