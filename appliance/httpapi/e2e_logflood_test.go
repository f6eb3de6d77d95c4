package httpapi_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"possync/appliance/apptest"
)

// TestRejectedRequestsLoggedOncePerMinute: a LAN client repeating a
// request the server cannot understand (a wrong URL, a bad body, an
// oversized one) is told so every time and counted every time, but logged
// once a minute per address and kind: a looping till or a scanner must not
// fill the box's journal (an SD card). A header that never completes
// is answered 408 naming http.header_timeout.
func TestRejectedRequestsLoggedOncePerMinute(t *testing.T) {
	srv, logs := newLogged(t, apptest.Options{MaxBodyBytes: 1024, HeaderTimeout: time.Second})
	kinds := []struct {
		name, path, body, logged string
	}{
		{"no route", "/nope", "{}", "no route POST /nope"},
		{"invalid", "/pos_longpolling/update", `{"jsonrpc":"2.0","id":1,"params":{}}`, "params.pos_id is missing"},
		{"too large", "/pos_longpolling/update", strings.Repeat(" ", 2048), "http.max_body_bytes"},
	}
	for _, k := range kinds {
		for range 5 {
			if a := do(t, nil, "POST", srv.URL+k.path, k.body, nil); a.status < 400 && !strings.Contains(string(a.body), `"error"`) {
				t.Fatalf("%s: answer %d %s, want an error", k.name, a.status, a.body)
			}
		}
		if got := logs.lines(k.logged); len(got) != 1 {
			t.Errorf("%s: sent 5 times, logged %d times, want once:\n%s", k.name, len(got), strings.Join(got, "\n"))
		}
	}
	if n := refusedCount(t, nil, srv.URL, "no_route"); n != "5" {
		t.Errorf("no_route refusals counted %s, want 5", n)
	}

	// Headers trickling in past http.header_timeout: 408 naming the key.
	for i := range 3 {
		c, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = io.WriteString(c, "POST /longpolling/poll HTTP/1.1\r\nHost: box\r\n")
		_ = c.SetReadDeadline(time.Now().Add(wait))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("slow header %d: %v, want an answer", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(b), "http.header_timeout") {
			t.Errorf("slow header %d: %d %s, want 408 naming http.header_timeout", i, resp.StatusCode, b)
		}
	}
	if got := logs.lines("http.header_timeout"); len(got) != 1 {
		t.Errorf("3 slow headers logged %d times, want once:\n%s", len(got), strings.Join(got, "\n"))
	}
}
