package httpapi_test

import (
	"strings"
	"testing"

	"possync/appliance/apptest"
)

// Anyone on the shop's network can send a database name or an order uid.
// Markup in them is shown as text on the status page; a name no PostgreSQL
// database can have (over 63 bytes) and an absurd uid are refused as bad
// input: they are not store errors, do not reach the store, and do not
// blow up the page with Badger's dump of an oversized key.
func TestStatusHostileNames(t *testing.T) {
	t.Parallel()
	srv := newServer(t, apptest.Options{})
	const script, img = `<script>alert("db")</script>`, `"><img src=x onerror=alert(1)>`
	openPOS(t, srv, cfg(script, 1, 1, 2))
	openPOS(t, srv, cfg(img, 1, 2, 3))
	shop := openPOS(t, srv, cfg("shop", 1, 3, 4))
	before, _ := scrape(t, srv)

	long := apptest.NewTerminal(t, srv.URL, cfg(strings.Repeat("d", 200_000), 1, 4, 5))
	if _, err := long.SyncAll(true, ""); err == nil || !strings.Contains(err.Error(), "params.dbname is 200000 bytes long") {
		t.Errorf("sync_all with a 200000-byte database name = %v, want it refused as bad input", err)
	}
	o := shop.NewOrder(1)
	o["uid"] = strings.Repeat("u", 70_000)
	if _, err := shop.UpdateOrder(o); err == nil || !strings.Contains(err.Error(), "params.message.data.uid is 70000 bytes long") {
		t.Errorf("update_order with a 70000-byte uid = %v, want it refused as bad input", err)
	}

	after, _ := scrape(t, srv)
	for sample, delta := range map[string]float64{
		`possync_rpc_errors_total{code="invalid"}`:               2,
		`possync_rpc_errors_total{code="internal"}`:              0,
		`possync_refused_requests_total{rule="invalid_request"}`: 2,
		"possync_store_errors_total":                             0,
		"possync_tracked_databases":                              0,
	} {
		if got := after[sample] - before[sample]; got != delta {
			t.Errorf("%s moved by %v, want %v", sample, got, delta)
		}
	}
	d, js := getStatus(t, srv)
	for _, w := range d.Warnings {
		if w.Kind == "store" {
			t.Errorf("bad input shows as a store warning: %.200s", w.Message)
		}
	}
	if len(js) > 16<<10 {
		t.Errorf("status.json is %d bytes after two oversized requests: they are echoed back", len(js))
	}
	if len(d.MultiSessions) != 3 {
		t.Errorf("status.json lists %d multi-sessions, want the 3 stored", len(d.MultiSessions))
	}

	_, _, body := get(t, srv.URL+"/")
	page := string(body)
	for _, raw := range []string{script, `<img src=x`, strings.Repeat("d", 64), strings.Repeat("u", 300)} {
		if strings.Contains(page, raw) {
			t.Errorf("status page contains %.40q unescaped or in full", raw)
		}
	}
	for _, escaped := range []string{`&lt;script&gt;alert(&#34;db&#34;)&lt;/script&gt; · multi-session 1`, `&#34;&gt;&lt;img src=x onerror=alert(1)&gt; · multi-session 1`} {
		if !strings.Contains(page, escaped) {
			t.Errorf("status page lacks the escaped heading %q", escaped)
		}
	}
}
