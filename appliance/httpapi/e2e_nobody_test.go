package httpapi_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"possync/appliance/apptest"
)

// TestRefusedBeforeBody: a client outside security.allowed_networks is
// answered 403 as soon as its request head has arrived, over HTTP and
// HTTPS. It announces a body of 1 MB and sends none: had the server waited
// for the body (fasthttp reads its first 8 KiB before calling a handler),
// the answer would come after the read timeout (a minute here).
func TestRefusedBeforeBody(t *testing.T) {
	srv, logs := newLogged(t, apptest.Options{ReadTimeout: time.Minute, TLS: true,
		AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	for _, url := range []string{srv.URL, srv.TLSURL} {
		addr := url[strings.Index(url, "//")+2:]
		d := net.Dialer{LocalAddr: tcpFrom("127.0.0.2"), Timeout: wait}
		raw, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		c := raw
		if strings.HasPrefix(url, "https") {
			tc := tls.Client(raw, &tls.Config{RootCAs: srv.RootCAs, ServerName: "127.0.0.1"})
			if err := tc.Handshake(); err != nil {
				t.Fatalf("%s: handshake: %v", url, err)
			}
			c = tc
		}
		start := time.Now()
		fmt.Fprintf(c, "POST /pos_multi_session_sync/update HTTP/1.1\r\nHost: box\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n")
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%s: no answer: %v", url, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 403 || !strings.Contains(string(body), "127.0.0.2 is not in security.allowed_networks") ||
			resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s: %d %v %s, want 403 with CORS naming the address and security.allowed_networks", url, resp.StatusCode, resp.Header, body)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("%s: refused after %v: the server waited for the body", url, took)
		}
	}
	if n := refusedCount(t, tcpFrom("127.0.0.1"), srv.URL, "network"); n != "2" {
		t.Errorf("network refusals counted %s, want 2", n)
	}
	if got := logs.lines("refused request", "rule=network", "path=/pos_multi_session_sync/update"); len(got) != 1 {
		t.Errorf("logged %d times, want once:\n%s", len(got), strings.Join(got, "\n"))
	}
}
