package httpapi_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"possync/appliance/apptest"
)

// With the admin endpoint on (512 MiB, 30 min for a bundle), the RPC
// routes keep http.max_body_bytes and http.read_timeout: an oversized
// body is refused (413) without being buffered, declared or chunked, and
// a body slower than the read timeout is cut. So are near-misses of the
// admin path (another case, a trailing slash, a query on another route).
func TestAdminOnKeepsRPCLimits(t *testing.T) {
	srv, _ := adminServer(t, t.TempDir(), 512<<20, func(o *apptest.Options) {
		o.MaxBodyBytes = 64 << 10
		o.ReadTimeout, o.HeaderTimeout = time.Second, time.Second
	})
	var last string
	post := func(path string, body io.Reader, size int64) (int, time.Duration) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, body)
		req.ContentLength = size
		req.Header.Set("Content-Type", "application/json")
		start := time.Now()
		resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
		if err != nil {
			return 0, time.Since(start) // cut off
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		last = string(b)
		return resp.StatusCode, time.Since(start)
	}
	big := bytes.Repeat([]byte("x"), 1<<20)
	for _, path := range []string{"/pos_multi_session_sync/update", "/longpolling/poll", "/pos_longpolling/update", "/longpolling/poll?/possync/admin/update"} {
		for _, size := range []int64{int64(len(big)), -1} {
			if code, _ := post(path, bytes.NewReader(big), size); code != http.StatusRequestEntityTooLarge {
				t.Errorf("POST %s, 1 MiB (size %d): %d, want 413", path, size, code)
			}
		}
	}
	// Near-misses of the admin path are no admin route (no 401 asking for
	// the token): 404, or a connection closed on the unread body.
	for _, path := range []string{"/possync/admin/update/", "/possync/admin/UPDATE"} {
		if code, _ := post(path, bytes.NewReader(big), int64(len(big))); code != 0 && code != http.StatusNotFound {
			t.Errorf("POST %s: %d, want 404", path, code)
		}
	}
	slow := &slowReader{data: []byte(`{"jsonrpc":"2.0","method":"call","params":{}}`), piece: 4, pause: 400 * time.Millisecond}
	code, took := post("/pos_multi_session_sync/update", slow, -1)
	// 12 pieces 0.4 s apart would take 4.8 s; a JSON-RPC error (HTTP 200,
	// as Odoo answers) or a cut connection near 1 s is the read timeout.
	if took > 3*time.Second || (code != 0 && !strings.Contains(last, "could not be read")) {
		t.Errorf("body slower than read_timeout 1s: %d after %v: %s; want it cut near 1s", code, took.Round(time.Millisecond), last)
	}
	t.Logf("slow RPC body: %d after %v: %.120s", code, took.Round(time.Millisecond), last)
}
