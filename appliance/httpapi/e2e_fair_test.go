package httpapi_test

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"possync/appliance/apptest"
)

// The field report: one address holding idle connections up to
// http.max_conns made every other till get 503. Idle connections are
// closed for a newcomer once they have been idle a second; a till of
// another address must not wait for that second when a single address
// holds more than a quarter of the limit: its newest idle connection is
// closed for the till at once. The hog itself gets no such favour, and
// addresses holding a fair share keep the one-second grace.
func TestOneAddressCannotHoldEveryConnection(t *testing.T) {
	t.Parallel()
	const max = 16
	srv := newServer(t, apptest.Options{MaxConns: max})
	addr := strings.TrimPrefix(srv.URL, "http://")
	from := func(ip string) net.Conn {
		d := net.Dialer{LocalAddr: tcpFrom(ip), Timeout: wait}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial from %s: %v", ip, err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	get := func(c net.Conn) int {
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, _ := readAnswer(t, c, wait)
		return resp.StatusCode
	}
	for range max {
		from("127.0.0.1") // connected, never a request
	}
	time.Sleep(200 * time.Millisecond) // accepted; well within their first second

	// Within the hog's first second: its own newcomer is refused …
	if s := get(from("127.0.0.1")); s != 503 {
		t.Errorf("one more connection from the address holding all %d = %d, want 503", max, s)
	}
	// … a till of another address is served at once, again and again.
	for i := range 3 {
		start := time.Now()
		if s := get(from("127.0.0.2")); s != 200 {
			t.Errorf("till at 127.0.0.2 (%d) while 127.0.0.1 holds every connection = %d, want 200", i, s)
		}
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Errorf("till at 127.0.0.2 served after %v, want at once", d)
		}
	}
}

// Addresses each holding a fair share keep the one-second grace: a
// connection that was just opened is probably about to send its request.
func TestFairSharesKeepTheirGrace(t *testing.T) {
	t.Parallel()
	const max = 16
	srv := newServer(t, apptest.Options{MaxConns: max})
	addr := strings.TrimPrefix(srv.URL, "http://")
	for i := range max {
		d := net.Dialer{LocalAddr: tcpFrom(fmt.Sprintf("127.0.0.%d", 10+i%4)), Timeout: wait}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
	time.Sleep(200 * time.Millisecond) // accepted; well within their first second
	d := net.Dialer{LocalAddr: tcpFrom("127.0.0.2"), Timeout: wait}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, _ := readAnswer(t, c, wait); resp.StatusCode != 503 {
		t.Errorf("newcomer while 4 addresses hold 4 fresh connections each = %d, want 503 (no fresh connection closed)", resp.StatusCode)
	}
}
