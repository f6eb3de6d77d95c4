package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"possync/appliance/apptest"
	"possync/appliance/httpapi"
	upd "possync/appliance/update"
	"possync/appliance/update/updatetest"
)

const adminToken = "correct-horse-battery-staple-42"

// adminServer starts a real server whose admin endpoint stores bundles in
// dir/incoming after the real `rauc info` checked them.
func adminServer(t *testing.T, dir string, maxBundle int64, mod func(*apptest.Options)) (*apptest.Server, *upd.Receiver) {
	t.Helper()
	rc := &upd.Receiver{Dir: dir, MaxBytes: maxBundle, Rauc: upd.Rauc{Keyring: updatetest.Keyring()}, Running: "1.0.0"}
	opts := apptest.Options{Admin: &httpapi.Admin{Token: []byte(adminToken), Updates: rc, MaxBundleBytes: maxBundle}}
	if mod != nil {
		mod(&opts)
	}
	return newServer(t, opts), rc
}

type adminReply struct {
	Status  string `json:"status"`
	Kind    string `json:"kind"`
	Error   string `json:"error"`
	Version string `json:"version"`
	Bytes   int64  `json:"bytes"`
	Next    string `json:"next"`
	Running string `json:"running"`
}

// upload POSTs body to the admin endpoint; size < 0 sends it chunked.
func upload(t *testing.T, url, token string, body io.Reader, size int64) (int, adminReply, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/possync/admin/update", body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = size
	if size < 0 {
		req.ContentLength = -1
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 2 * time.Minute}).Do(req)
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var r adminReply
	_ = json.Unmarshal(raw, &r)
	return resp.StatusCode, r, string(raw)
}

func incomingFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(dir, "incoming"))
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// The whole way of an upload over real HTTP: token checked before the
// body, a good bundle lands in incoming/ (202 with its version and what
// happens next), bad ones are refused with rauc's reason (422) and leave
// nothing, as do oversized ones (413).
func TestAdminUpdateUpload(t *testing.T) {
	updatetest.NeedRauc(t)
	dir, bundles := t.TempDir(), t.TempDir()
	srv, _ := adminServer(t, dir, 8<<20, nil)
	good := updatetest.Bundle(t, bundles, updatetest.Good, "2.0.0", 2_000_000)
	data, _ := os.ReadFile(good)

	for _, tc := range []struct{ name, token, want string }{
		{"no token", "", "admin token missing"},
		{"wrong token", "correct-horse-battery-staple-43", "wrong or missing admin token"},
	} {
		code, r, raw := upload(t, srv.URL, tc.token, bytes.NewReader(data), int64(len(data)))
		if code != 401 || r.Kind != "token" || !strings.Contains(r.Error, tc.want) {
			t.Errorf("%s: %d %s", tc.name, code, raw)
		}
	}
	if files := incomingFiles(t, dir); len(files) != 0 {
		t.Fatalf("refused uploads left %v", files)
	}

	// GET checks the token without a body.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/possync/admin/update", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET with the token: %v %v", resp, err)
	}
	resp.Body.Close()

	code, r, raw := upload(t, srv.URL, adminToken, bytes.NewReader(data), int64(len(data)))
	if code != 202 || r.Status != "accepted" || r.Version != "2.0.0" || r.Bytes != int64(len(data)) || !strings.Contains(r.Next, "reboots") {
		t.Fatalf("good bundle: %d %s", code, raw)
	}
	if files := incomingFiles(t, dir); len(files) != 1 || files[0] != "possync-2.0.0.raucb" {
		t.Fatalf("incoming = %v", files)
	}
	os.Remove(filepath.Join(dir, "incoming", "possync-2.0.0.raucb"))

	// Chunked (no Content-Length) works too.
	code, r, raw = upload(t, srv.URL, adminToken, io.MultiReader(bytes.NewReader(data)), -1)
	if code != 202 || r.Version != "2.0.0" {
		t.Fatalf("chunked good bundle: %d %s", code, raw)
	}
	os.Remove(filepath.Join(dir, "incoming", "possync-2.0.0.raucb"))

	for _, tc := range []struct {
		kind, want string
	}{
		{updatetest.OtherCA, "signature verification failed"},
		{updatetest.Unsigned, "Signature size is 0"},
		{updatetest.WrongCompat, "possync-armhf"},
		{updatetest.Truncated, "Invalid bundle format"},
	} {
		f := updatetest.Bundle(t, bundles, tc.kind, "2.0.0", 100_000)
		b, _ := os.ReadFile(f)
		code, r, raw := upload(t, srv.URL, adminToken, bytes.NewReader(b), int64(len(b)))
		if code != 422 || r.Kind != "refused" || !strings.Contains(r.Error, tc.want) {
			t.Errorf("%s: %d %s", tc.kind, code, raw)
		} else {
			t.Logf("%s: %d %s", tc.kind, code, r.Error)
		}
	}
	big := make([]byte, 9<<20)
	code, r, raw = upload(t, srv.URL, adminToken, bytes.NewReader(big), int64(len(big)))
	if code != 413 || r.Kind != "too_large" || !strings.Contains(r.Error, "8 MiB (admin.max_bundle_mib)") {
		t.Errorf("oversized: %d %s", code, raw)
	}
	code, _, raw = upload(t, srv.URL, adminToken, bytes.NewReader(big), -1)
	if code != 413 {
		t.Errorf("oversized chunked: %d %s", code, raw)
	}
	if files := incomingFiles(t, dir); len(files) != 0 {
		t.Fatalf("refused uploads left %v", files)
	}

	// Counted per route and refusal rule.
	resp, err = http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, line := range []string{`possync_refused_requests_total{rule="admin_token"} 2`, `possync_http_requests_total{route="admin_update",outcome="ok"} 3`,
		`possync_http_requests_total{route="admin_update",outcome="refused"} 8`} {
		if !strings.Contains(string(m), line) {
			t.Errorf("/metrics lacks %s", line)
		}
	}
}

// Off unless a token is configured: 404 with how to turn it on. And the
// endpoint obeys security.allowed_networks like every route.
func TestAdminUpdateOffAndNetworks(t *testing.T) {
	updatetest.NeedRauc(t)
	srv := newServer(t, apptest.Options{})
	code, _, raw := upload(t, srv.URL, adminToken, strings.NewReader("x"), 1)
	if code != 404 || !strings.Contains(raw, "admin.token or admin.token_file") {
		t.Errorf("without a token configured: %d %s", code, raw)
	}
	far, _ := adminServer(t, t.TempDir(), 8<<20, func(o *apptest.Options) {
		o.AllowedNetworks = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	})
	code, _, raw = upload(t, far.URL, adminToken, strings.NewReader("x"), 1)
	if code != 403 || !strings.Contains(raw, "not in security.allowed_networks") {
		t.Errorf("from outside allowed_networks: %d %s", code, raw)
	}
}

// Not enough room on the data partition: 507 with the reason, nothing kept.
func TestAdminUpdateDiskFull(t *testing.T) {
	updatetest.NeedRauc(t)
	dir := t.TempDir()
	srv, rc := adminServer(t, dir, 64<<20, nil)
	rc.KeepFreeBytes = 1 << 62
	code, r, raw := upload(t, srv.URL, adminToken, bytes.NewReader(make([]byte, 1<<20)), 1<<20)
	if code != 507 || r.Kind != "disk_full" || !strings.Contains(r.Error, "not enough free space") {
		t.Errorf("disk full: %d %s", code, raw)
	}
	if files := incomingFiles(t, dir); len(files) != 0 {
		t.Fatalf("left %v", files)
	}
}

// A bundle of hundreds of MiB streams to disk: 192 MiB go through while
// the process allocates a small fraction of that (the client streams from
// a reader too). rauc then refuses it (it is no bundle), which is fine.
func TestAdminUpdateStreamsToDisk(t *testing.T) {
	updatetest.NeedRauc(t)
	if testing.Short() {
		t.Skip("SKIPPED, NOT RUN in -short: writes 192 MiB")
	}
	dir := t.TempDir()
	srv, _ := adminServer(t, dir, 512<<20, nil)
	const size = 192 << 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	code, r, raw := upload(t, srv.URL, adminToken, io.LimitReader(zeros{}, size), size)
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	if code != 422 || r.Kind != "refused" {
		t.Fatalf("192 MiB of zeros: %d %s", code, raw)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("192 MiB upload in %v (%.0f MiB/s); allocated %d MiB in the process meanwhile", took.Round(time.Millisecond), float64(size>>20)/took.Seconds(), alloc>>20)
	if alloc > 48<<20 {
		t.Errorf("allocated %d MiB for a 192 MiB upload: the body is buffered, not streamed", alloc>>20)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// slowReader hands out data in pieces with a pause before each.
type slowReader struct {
	data  []byte
	piece int
	pause time.Duration
}

func (s *slowReader) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		return 0, io.EOF
	}
	time.Sleep(s.pause)
	n := copy(p[:min(len(p), s.piece)], s.data)
	s.data = s.data[n:]
	return n, nil
}

// An upload may take longer than http.read_timeout (which guards the RPC
// routes): the admin route gets its own time to receive a bundle.
func TestAdminUpdateSlowerThanReadTimeout(t *testing.T) {
	updatetest.NeedRauc(t)
	dir := t.TempDir()
	srv, _ := adminServer(t, dir, 8<<20, func(o *apptest.Options) {
		o.ReadTimeout, o.HeaderTimeout = time.Second, time.Second
	})
	good, _ := os.ReadFile(updatetest.Bundle(t, t.TempDir(), updatetest.Good, "2.0.0", 100_000))
	start := time.Now()
	code, r, raw := upload(t, srv.URL, adminToken, &slowReader{data: good, piece: len(good)/10 + 1, pause: 300 * time.Millisecond}, int64(len(good)))
	if code != 202 || r.Version != "2.0.0" {
		t.Fatalf("slow upload (%v, read_timeout 1s): %d %s", time.Since(start).Round(time.Millisecond), code, raw)
	}
	t.Logf("upload took %v with http.read_timeout = 1s", time.Since(start).Round(time.Millisecond))
}

// GET ?size=N answers whether a bundle of N bytes would be taken, so the
// client learns "too large" or "disk full" before sending it.
func TestAdminUpdateFits(t *testing.T) {
	updatetest.NeedRauc(t)
	srv, rc := adminServer(t, t.TempDir(), 8<<20, nil)
	ask := func(size int64) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/possync/admin/update?size=%d", srv.URL, size), nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := ask(1 << 20); code != 200 || !strings.Contains(body, `"ready"`) {
		t.Errorf("1 MiB: %d %s", code, body)
	}
	if code, body := ask(9 << 20); code != 413 || !strings.Contains(body, "too_large") {
		t.Errorf("9 MiB: %d %s", code, body)
	}
	rc.KeepFreeBytes = 1 << 62
	if code, body := ask(1 << 20); code != 507 || !strings.Contains(body, "disk_full") {
		t.Errorf("no room: %d %s", code, body)
	}
}
