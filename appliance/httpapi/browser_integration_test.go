//go:build integration

package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"possync/appliance/apptest"
)

// browserPage plays two POS terminals in a real browser, from an origin
// other than the Sync Server's, with XMLHttpRequest calls shaped like
// Odoo 12's ajax.js (JSON body, X-Debug-Mode header → CORS preflight).
const browserPage = `<!doctype html><html><body><script>
const SYNC = %q;
let rid = 1;
function rpc(path, params) {
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    x.open('POST', SYNC + path);
    x.setRequestHeader('Content-Type', 'application/json');
    x.setRequestHeader('X-Debug-Mode', 'assets');
    x.responseType = 'text';
    x.onload = () => { try { resolve(JSON.parse(x.responseText)); } catch (e) { reject('bad JSON ' + x.status + ' ' + x.responseText); } };
    x.onerror = () => reject('xhr error on ' + path + ' (CORS?)');
    x.send(typeof params === 'string' ? params : JSON.stringify({jsonrpc: '2.0', method: 'call', params: params, id: rid++}));
  });
}
const ch = (pos, name) => JSON.stringify(['shop', name, String(pos)]);
const upd = (pos, message) => rpc('/pos_multi_session_sync/update', {multi_session_id: 1, dbname: 'shop', user_ID: 2, message: message});
async function main() {
  const out = {};
  try {
    const s1 = await upd(1, {action: 'sync_all', session_id: 11, login_number: 1, immediate_rerendering: true, data: {run_ID: 1, pos_id: 1, nonce: 'a1'}});
    const s2 = await upd(2, {action: 'sync_all', session_id: 12, login_number: 1, immediate_rerendering: true, data: {run_ID: 1, pos_id: 2, nonce: 'b1'}});
    out.sync = [s1.result.action, s2.result.data.message_ID];
    const poll = rpc('/longpolling/poll', {channels: [ch(2, 'pos.longpolling'), ch(2, 'pos.multi_session')], last: 0, options: {bus_inactivity: 10}});
    await new Promise(r => setTimeout(r, 300));
    const t0 = performance.now();
    const u = await upd(1, {action: 'update_order', session_id: 11, login_number: 1, data: {uid: '00011-001-0001', sequence_number: 1,
      revision_ID: 1, run_ID: 1, pos_id: 1, nonce: 'a2', name: 'Order 00011-001-0001', lines: [[0, 0, {uid: 'l1', qty: 2, product_id: 50}]],
      statement_ids: [], custom: {note: 'héllo 😀', n: null}}});
    out.update = u.result;
    const p = await poll;
    out.pollMs = performance.now() - t0;
    out.poll = p.result.map(n => [n.channel, n.message.action, n.message.data.message_ID, n.message.data.custom.note]);
    const ping = await rpc('/pos_longpolling/update', {message: 'PING', pos_id: 1, db_name: 'shop'});
    const pong = await rpc('/longpolling/poll', {channels: [ch(1, 'pos.longpolling')], last: 0});
    out.ping = [ping.result, pong.result.map(n => n.message)];
    const bad = await rpc('/pos_multi_session_sync/update', '{not json');
    out.bad = [bad.error.code, bad.error.data.name, bad.error.data.arguments.length > 0, bad.error.data.message];
  } catch (e) { out.error = String(e); }
  const r = new XMLHttpRequest(); r.open('POST', '/result'); r.send(JSON.stringify(out));
}
main();
</script></body></html>`

func TestBrowserCrossOrigin(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium not installed (build/deps/browser.txt; build/install-deps.sh installs it): %v", err)
	}
	var logs logBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := apptest.MustOpenServer(t, apptest.Options{PollHold: 5 * time.Second, Logger: logger})

	results := make(chan []byte, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, browserPage, srv.URL)
	})
	mux.HandleFunc("/result", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		select {
		case results <- b:
		default:
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	page := &http.Server{Handler: mux}
	go page.Serve(ln)
	t.Cleanup(func() { page.Close() })

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--user-data-dir="+t.TempDir(),
		"http://"+ln.Addr().String()+"/")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	var raw []byte
	select {
	case raw = <-results:
	case <-ctx.Done():
		t.Fatalf("the page never reported; chromium said:\n%s", tail(stderr.String(), 2000))
	}
	var out struct {
		Sync   []any
		Update map[string]any
		PollMs float64
		Poll   [][]any
		Ping   []any
		Bad    []any
		Error  string
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("page result %s: %v", raw, err)
	}
	if out.Error != "" {
		t.Fatalf("page failed: %s\nserver log:\n%s", out.Error, tail(logs.String(), 3000))
	}
	if fmt.Sprint(out.Sync) != "[sync_all 2]" {
		t.Errorf("sync_all from the browser = %v, want [sync_all 2]", out.Sync)
	}
	if out.Update["action"] != "update_revision_ID" || out.Update["order_ID"] != float64(1) {
		t.Errorf("update_order from the browser = %v", out.Update)
	}
	want := fmt.Sprint([]any{`["shop","pos.multi_session","2"]`, "update_order", float64(3), "héllo 😀"})
	if len(out.Poll) != 1 || fmt.Sprint(out.Poll[0]) != want {
		t.Errorf("long-poll in the browser got %v, want [%v]", out.Poll, want)
	}
	if fmt.Sprint(out.Ping) != "[1 [PONG]]" {
		t.Errorf("PING/PONG in the browser = %v", out.Ping)
	}
	if len(out.Bad) != 4 || out.Bad[0] != float64(200) || out.Bad[1] != "werkzeug.exceptions.BadRequest" || out.Bad[2] != true {
		t.Errorf("malformed request: the browser read %v, want a readable Odoo-shaped error", out.Bad)
	}
	if n := strings.Count(logs.String(), "method=OPTIONS"); n == 0 {
		t.Errorf("the browser sent no CORS preflight (OPTIONS): the test did not exercise CORS")
	} else {
		t.Logf("preflights answered: %d; update→poll wake seen by the page: %.1f ms", n, out.PollMs)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
