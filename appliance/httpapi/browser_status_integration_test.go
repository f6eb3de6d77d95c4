//go:build integration

package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"possync/appliance/apptest"
)

// TestBrowserStatusPage opens the status page in Debian's headless Chromium
// while simulated terminals of two multi-sessions sync and poll. It checks
// that both multi-sessions and their tills are shown, that a new order
// raises the open-order count on the page without a reload, that a till
// which stops polling turns "offline", and that the page fits a 320 px
// screen; it saves screenshots at 412 and 1280 px wide and prints their
// paths ($POSSYNC_ARTIFACTS, or a kept temporary directory).
func TestBrowserStatusPage(t *testing.T) {
	chromium := lookChromium(t)
	dir := os.Getenv("POSSYNC_ARTIFACTS")
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "possync-status-page-"); err != nil {
			t.Fatal(err)
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}

	// A short poll hold and online window let a till turn offline within
	// seconds instead of a minute.
	srv := apptest.MustOpenServer(t, apptest.Options{PollHold: time.Second, OnlineWindow: 2 * time.Second})
	p1 := openPOS(t, srv, cfg("shop", 1, 1, 2))
	p2 := openPOS(t, srv, cfg("shop", 1, 2, 3))
	openPOS(t, srv, cfg("shop", 2, 3, 4))
	o := p1.NewOrder(1)
	p1.AddLine(o, 50, 1, 4.8)
	mustOK(t)(p1.UpdateOrder(o))

	deadline, waitFor, eval := openStatusPage(t, chromium, srv)
	openText := func(ms int) string {
		return eval(fmt.Sprintf(`document.querySelector('#ms-shop-%d').parentElement.querySelector('.open').textContent`, ms))
	}

	waitFor("both multi-sessions with their tills online", `
		!!document.querySelector('#ms-shop-1') && !!document.querySelector('#ms-shop-2') &&
		['1','2','3'].every(p => { const r = document.querySelector('tr[data-pos="'+p+'"]'); return r && r.classList.contains('on'); })`)
	if got := openText(1); got != "1 open order" {
		t.Errorf("shop/1 shows %q, want \"1 open order\"", got)
	}
	if got := eval(`document.querySelector('tr[data-pos="2"] td[data-label="User"]').textContent`); got != "3" {
		t.Errorf("POS 2's user shows %q, want 3", got)
	}
	// A reload would drop this mark: the page must update in place.
	eval(`window.possyncMark = 'same page'; 'ok'`)

	o2 := p2.NewOrder(1)
	p2.AddLine(o2, 51, 2, 1.5)
	mustOK(t)(p2.UpdateOrder(o2))
	waitFor("2 open orders in shop/1", `document.querySelector('#ms-shop-1').parentElement.querySelector('.open').textContent === '2 open orders'`)
	if got := openText(2); got != "0 open orders" {
		t.Errorf("shop/2 shows %q, want \"0 open orders\"", got)
	}
	if mark := eval(`String(window.possyncMark)`); mark != "same page" {
		t.Errorf("the page reloaded to show the new order (mark %q)", mark)
	}

	stale := p2.NewOrder(1) // POS 2 edits POS 1's order from a revision the server is past:
	stale["uid"] = o.UID()  // a conflict, shown as a warning
	stale["revision_ID"] = 0
	if _, err := p2.UpdateOrder(stale); err != nil {
		t.Fatal(err)
	}
	p2.StopPolling()
	waitFor("POS 2 offline", `(() => { const r = document.querySelector('tr[data-pos="2"]');
		return r.classList.contains('off') && r.querySelector('.state').textContent.startsWith('offline since'); })()`)
	waitFor("the conflict warning", `document.querySelector('#warnings').textContent.includes('conflict')`)
	waitFor("the glance line", `document.querySelector('#glance').textContent === '2 of 3 tills online · 2 open orders'`)
	if cls := eval(`document.querySelector('tr[data-pos="1"]').className`); cls != "on" {
		t.Errorf("POS 1 row class %q, want on (still polling)", cls)
	}
	if mark := eval(`String(window.possyncMark)`); mark != "same page" {
		t.Errorf("the page reloaded (mark %q)", mark)
	}

	for _, w := range []int64{412, 1280} {
		if err := chromedp.Do(deadline, chromedp.EmulateViewport(w, 900)); err != nil {
			t.Fatal(err)
		}
		buf, err := chromedp.Run(deadline, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot at %d px: %v", w, err)
		}
		path := filepath.Join(dir, fmt.Sprintf("status-page-%dpx.png", w))
		if err := os.WriteFile(path, buf, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot %d px wide: %s", w, path)
		fmt.Printf("status page screenshot (%d px): %s\n", w, path)
	}
	if err := chromedp.Do(deadline, chromedp.EmulateViewport(320, 800)); err != nil {
		t.Fatal(err)
	}
	if w := eval(`String(document.documentElement.scrollWidth)`); w != "320" {
		t.Errorf("at 320 px the page is %s px wide: it scrolls sideways", w)
	}
}

func lookChromium(t *testing.T) string {
	t.Helper()
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium not installed (build/deps/browser.txt; build/install-deps.sh installs it): %v", err)
	}
	return chromium
}

// openStatusPage opens srv's status page in headless Chromium (closed at the
// end of the test) and returns a context bounding the test's browser work,
// a function waiting until a JavaScript predicate holds on the page, and one
// evaluating a JavaScript expression to a string.
func openStatusPage(t *testing.T, chromium string, srv *apptest.Server) (deadline context.Context, waitFor func(what, predicate string), eval func(expr string) string) {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/")); err != nil {
		t.Fatalf("open the status page: %v", err)
	}
	deadline, stop := context.WithTimeout(ctx, 45*time.Second)
	t.Cleanup(stop)
	waitFor = func(what, predicate string) {
		t.Helper()
		if _, err := chromedp.Run(deadline, chromedp.Poll[bool](predicate, chromedp.WithPollingInterval(100*time.Millisecond),
			chromedp.WithPollingTimeout(20*time.Second))); err != nil {
			html, _ := chromedp.Run(deadline, chromedp.OuterHTML("main"))
			t.Fatalf("the page never showed %s (%v); it shows:\n%s", what, err, html)
		}
	}
	eval = func(expr string) string {
		t.Helper()
		v, err := chromedp.Run(deadline, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatalf("evaluate %s: %v", expr, err)
		}
		return v
	}
	return deadline, waitFor, eval
}

// TestBrowserStatusPageEscapes: database names and a refused path full of
// markup stay text when the page's script redraws it from /status.json
// (the server-rendered page is checked by TestStatusHostileNames), and the
// redrawn tables keep their ARIA roles.
func TestBrowserStatusPageEscapes(t *testing.T) {
	chromium := lookChromium(t)
	srv := apptest.MustOpenServer(t, apptest.Options{PollHold: time.Second})
	const img, bold = `<img src=x onerror=window.pwned=1>`, `<b>bold</b>`
	openPOS(t, srv, cfg(img, 1, 1, 2))
	openPOS(t, srv, cfg(bold, 1, 2, 3))
	_, waitFor, eval := openStatusPage(t, chromium, srv)

	resp, err := http.Get(srv.URL + "/" + url.PathEscape(`<img src=y onerror=window.pwned=2>`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	waitFor("the refused path among the warnings, redrawn by the script",
		`document.querySelector('#warnings').textContent.includes('<img src=y onerror=window.pwned=2>')`)
	waitFor("a redraw after the warning", `document.querySelector('#live').textContent.startsWith('Live: updated')`)
	for expr, want := range map[string]string{
		`String(window.pwned)`:                               "undefined",
		`String(document.querySelectorAll('img, b').length)`: "0",
		`Array.from(document.querySelectorAll('#tills h3')).map(h => h.textContent).join('|')`:            bold + " · multi-session 1|" + img + " · multi-session 1", // by name
		`Array.from(document.querySelectorAll('#databases code')).map(c => c.textContent).join('|')`:      bold + "|" + img,
		`String(document.querySelectorAll('#tills table[role=table] tr[role=row] td[role=cell]').length)`: "8",
	} {
		if got := eval(expr); got != want {
			t.Errorf("%s = %q, want %q", expr, got, want)
		}
	}
}
