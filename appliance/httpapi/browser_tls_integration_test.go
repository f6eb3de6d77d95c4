//go:build integration

package httpapi_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"possync/appliance/apptest"
	"possync/appliance/tlscert"
)

// Addresses of the two namespaces: the "internet" with the hosted Odoo
// (TEST-NET-2, public to Chrome) and the shop LAN with possync and the till.
const (
	publicIP = "198.51.100.10"
	shopIP   = "192.168.77.2"
)

// lnaPage is a stand-in hosted Odoo POS page: two POS terminals calling
// the Sync Server (SYNC) with XHRs shaped like Odoo 12's ajax.js (JSON
// POST, X-Debug-Mode header → CORS preflight) and a long-poll. It reports
// what it saw to /result, including the exact failure it got.
const lnaPage = `<!doctype html><html><body><script>
const SYNC = %q;
let rid = 1, reported = false;
function report(out) { if (reported) return; reported = true;
  const r = new XMLHttpRequest(); r.open('POST', '/result'); r.send(JSON.stringify(out)); }
setTimeout(() => report({error: 'no answer within 20 s'}), 20000);
function rpc(path, params) {
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    x.open('POST', SYNC + path);
    x.setRequestHeader('Content-Type', 'application/json');
    x.setRequestHeader('X-Debug-Mode', 'assets');
    x.onload = () => { try { resolve(JSON.parse(x.responseText)); } catch (e) { reject('HTTP ' + x.status + ' ' + x.responseText); } };
    x.onerror = () => reject('XHR error event on POST ' + path + ': status ' + x.status + ', readyState ' + x.readyState);
    x.send(JSON.stringify({jsonrpc: '2.0', method: 'call', params: params, id: rid++}));
  });
}
const ch = (pos, name) => JSON.stringify(['shop', name, String(pos)]);
const upd = (pos, message) => rpc('/pos_multi_session_sync/update', {multi_session_id: 1, dbname: 'shop', user_ID: 2, message: message});
async function main() {
  const out = {secure: window.isSecureContext};
  try {
    const s1 = await upd(1, {action: 'sync_all', session_id: 11, login_number: 1, immediate_rerendering: true, data: {run_ID: 1, pos_id: 1, nonce: 'a1'}});
    const s2 = await upd(2, {action: 'sync_all', session_id: 12, login_number: 1, immediate_rerendering: true, data: {run_ID: 1, pos_id: 2, nonce: 'b1'}});
    out.sync = [s1.result.action, s2.result.data.message_ID];
    const poll = rpc('/longpolling/poll', {channels: [ch(2, 'pos.longpolling'), ch(2, 'pos.multi_session')], last: 0, options: {bus_inactivity: 10}});
    await new Promise(r => setTimeout(r, 300));
    const u = await upd(1, {action: 'update_order', session_id: 11, login_number: 1, data: {uid: '00011-001-0001', sequence_number: 1,
      revision_ID: 1, run_ID: 1, pos_id: 1, nonce: 'a2', name: 'Order 00011-001-0001', lines: [[0, 0, {uid: 'l1', qty: 2, product_id: 50}]],
      statement_ids: []}});
    out.update = u.result.action;
    const p = await poll;
    out.poll = p.result.map(n => n.message.action);
  } catch (e) { out.error = String(e); }
  report(out);
}
main();
</script></body></html>`

// lnaResult is what the page reported.
type lnaResult struct {
	Secure bool
	Sync   []any
	Update string
	Poll   []string
	Error  string
	// Console is what Chromium logged about the page (console messages,
	// blocked requests).
	Console []string
}

// TestBrowserHTTPSOdoo drives Debian's headless Chromium as a till in a
// shop LAN namespace: the POS page comes over HTTPS from a public address
// (another namespace), possync runs on a private address. It records what
// the page sees for each Sync Server URL and policy (the README's table).
func TestBrowserHTTPSOdoo(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium not installed (build/deps/browser.txt): %v", err)
	}
	certutil, err := exec.LookPath("certutil")
	if err != nil {
		t.Fatalf("certutil not installed (libnss3-tools, build/deps/browser.txt): %v", err)
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	pub, shop := lnaNamespaces(t)

	// possync on the shop LAN, HTTP and HTTPS, its CA in its data dir.
	var srv *apptest.Server
	inNetns(t, shop, func() {
		srv = apptest.MustOpenServer(t, apptest.Options{PollHold: 5 * time.Second, TLS: true, Host: shopIP,
			Logger: slog.New(slog.DiscardHandler)})
	})

	// The hosted Odoo: HTTPS on the public address, its certificate from
	// a "public" CA the till trusts (as it trusts a real one).
	pubCA, err := tlscert.LoadOrCreateCA(t.TempDir(), "test public")
	if err != nil {
		t.Fatal(err)
	}
	pubCert, _, _, err := pubCA.Issue([]string{"odoo.test"}, []net.IP{net.ParseIP(publicIP)})
	if err != nil {
		t.Fatal(err)
	}
	results := make(chan lnaResult, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, lnaPage, r.URL.Query().Get("sync"))
	})
	mux.HandleFunc("/result", func(w http.ResponseWriter, r *http.Request) {
		var res lnaResult
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &res); err != nil {
			res.Error = "bad report: " + string(b)
		}
		select {
		case results <- res:
		default:
		}
	})
	var ln net.Listener
	inNetns(t, pub, func() { ln, err = net.Listen("tcp", publicIP+":0") })
	if err != nil {
		t.Fatal(err)
	}
	page := &http.Server{Handler: mux, TLSConfig: &tls.Config{Certificates: []tls.Certificate{*pubCert}}, ErrorLog: nil}
	go page.ServeTLS(ln, "", "")
	t.Cleanup(func() { page.Close() })
	origin := "https://" + ln.Addr().String()

	// The till's trust store: an NSS db in $HOME/.pki/nssdb of the profile.
	home := t.TempDir()
	nss := "sql:" + filepath.Join(home, ".pki", "nssdb")
	os.MkdirAll(filepath.Join(home, ".pki", "nssdb"), 0o700)
	mustRun(t, certutil, "-d", nss, "-N", "--empty-password")
	addCA := func(name string, pemBytes []byte) {
		f := filepath.Join(home, name+".crt")
		os.WriteFile(f, pemBytes, 0o600)
		mustRun(t, certutil, "-d", nss, "-A", "-t", "C,,", "-n", name, "-i", f)
	}
	addCA("public", pubCA.PEM)
	addCA("possync", srv.CA.PEM)

	httpsSync := srv.TLSURL // https://192.168.77.2:port
	httpSync := srv.URL     // http://192.168.77.2:port
	cases := []struct {
		name, sync string
		policy     bool
		wantOK     bool
	}{
		{"https+policy", httpsSync, true, true},
		{"http+policy", httpSync, true, true},
		{"https, no policy", httpsSync, false, false},
		{"http, no policy", httpSync, false, false},
	}
	var matrix []string
	for _, tc := range cases {
		setLNAPolicy(t, tc.policy, origin)
		res := runTill(t, chromium, shop, home, origin+"/?sync="+tc.sync, results)
		line := fmt.Sprintf("%-17s → %s", tc.name, describe(res))
		for _, c := range res.Console {
			line += "\n    chromium: " + strings.TrimSpace(c)
		}
		matrix = append(matrix, line)
		ok := res.Error == "" && res.Update == "update_revision_ID" && len(res.Poll) == 1 && res.Poll[0] == "update_order"
		if ok != tc.wantOK {
			t.Errorf("%s: page saw %+v, want works=%v", tc.name, res, tc.wantOK)
		}
	}
	setLNAPolicy(t, false, origin)
	t.Logf("browser matrix (Chromium, page %s, Sync Server on %s):\n%s", origin, shopIP, strings.Join(matrix, "\n"))

	// A request from the public address straight to possync, over HTTP and
	// HTTPS: 403 naming the rule and the address.
	for _, sync := range []string{httpSync, httpsSync} {
		var status string
		inNetns(t, pub, func() { status = rawPost(t, sync, srv.RootCAs) })
		if !strings.HasPrefix(status, "HTTP/1.1 403") || !strings.Contains(status, "security.allowed_networks") || !strings.Contains(status, publicIP) {
			t.Errorf("request from the public address %s to %s = %q, want 403 naming security.allowed_networks and the address", publicIP, sync, status)
		}
		t.Logf("request from %s straight to %s: %s", publicIP, sync, status)
	}
}

func describe(r lnaResult) string {
	if r.Error != "" {
		return fmt.Sprintf("refused (secure context %v): %s", r.Secure, r.Error)
	}
	return fmt.Sprintf("works: sync_all %v, update %s, poll %v", r.Sync, r.Update, r.Poll)
}

// runTill runs one headless Chromium with a fresh profile in the shop
// namespace on url and returns what the page reported.
func runTill(t *testing.T, chromium, ns, home, url string, results chan lnaResult) lnaResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, chromium, "--headless", "--no-sandbox", "--disable-gpu",
		"--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--enable-logging=stderr", "--v=0", "--user-data-dir="+t.TempDir(), url)
	cmd.Env = append(os.Environ(), "HOME="+home)
	var stderr logBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	select {
	case r := <-results:
		for _, l := range strings.Split(stderr.String(), "\n") {
			if strings.Contains(l, "CONSOLE") || strings.Contains(l, "Local Network") || strings.Contains(l, "blocked") {
				r.Console = append(r.Console, l[strings.Index(l, "]")+1:])
			}
		}
		return r
	case <-ctx.Done():
		t.Fatalf("the page %s never reported; chromium said:\n%s", url, tail(stderr.String(), 2000))
	}
	return lnaResult{}
}

// policyFile is where Debian's chromium reads managed policies.
const policyFile = "/etc/chromium/policies/managed/possync-tls-test.json"

func setLNAPolicy(t *testing.T, on bool, origin string) {
	t.Helper()
	if !on {
		_ = os.Remove(policyFile)
		return
	}
	os.MkdirAll(filepath.Dir(policyFile), 0o755)
	b, _ := json.Marshal(map[string]any{"LocalNetworkAccessAllowedForUrls": []string{origin}})
	if err := os.WriteFile(policyFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(policyFile) })
}

// rawPost sends an update request to url (http:// or https://, trusting
// roots) over a connection made in the calling thread's namespace and
// returns the status line and the JSON-RPC error message.
func rawPost(t *testing.T, url string, roots *x509.CertPool) string {
	addr := strings.TrimPrefix(strings.TrimPrefix(url, "http://"), "https://")
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "dial: " + err.Error()
	}
	defer c.Close()
	if strings.HasPrefix(url, "https://") {
		tc := tls.Client(c, &tls.Config{RootCAs: roots, ServerName: shopIP})
		if err := tc.Handshake(); err != nil {
			return "handshake: " + err.Error()
		}
		c = tc
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	body := `{"jsonrpc":"2.0","method":"call","params":{},"id":1}`
	fmt.Fprintf(c, "POST /pos_multi_session_sync/update HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", addr, len(body), body)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return "read: " + err.Error()
	}
	defer resp.Body.Close()
	var v struct {
		Error struct{ Data struct{ Message string } }
	}
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &v)
	return fmt.Sprintf("HTTP/%d.%d %s: %s", resp.ProtoMajor, resp.ProtoMinor, resp.Status, v.Error.Data.Message)
}

// lnaNamespaces makes the public and the shop namespace, linked by a veth
// pair with a route to each other's subnet.
func lnaNamespaces(t *testing.T) (pub, shop string) {
	t.Helper()
	id := fmt.Sprint(os.Getpid() % 100000)
	pub, shop = "tlspub"+id, "tlsshop"+id
	for _, ns := range []string{pub, shop} {
		mustRun(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
		mustRun(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	mustRun(t, "ip", "link", "add", "tlsp"+id, "netns", pub, "type", "veth", "peer", "name", "tlss"+id, "netns", shop)
	mustRun(t, "ip", "-n", pub, "addr", "add", publicIP+"/24", "dev", "tlsp"+id)
	mustRun(t, "ip", "-n", shop, "addr", "add", shopIP+"/24", "dev", "tlss"+id)
	mustRun(t, "ip", "-n", pub, "link", "set", "tlsp"+id, "up")
	mustRun(t, "ip", "-n", shop, "link", "set", "tlss"+id, "up")
	mustRun(t, "ip", "-n", pub, "route", "add", "192.168.77.0/24", "dev", "tlsp"+id)
	mustRun(t, "ip", "-n", shop, "route", "add", "198.51.100.0/24", "dev", "tlss"+id)
	return pub, shop
}

// inNetns runs f on a thread switched into namespace ns; sockets made by f
// stay in ns.
func inNetns(t *testing.T, ns string, f func()) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	target, err := os.Open("/var/run/netns/" + ns)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			t.Errorf("back to the test's namespace: %v", err) // the thread stays locked and dies with the goroutine
			return
		}
		runtime.UnlockOSThread()
	}()
	f()
}

func mustRun(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}
