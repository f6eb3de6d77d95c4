package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"possync/appliance/apptest"
)

var (
	soakFor       = flag.Duration("soak", 15*time.Second, "how long TestSoak's terminals write (CI: 15s; e.g. -soak 2h for a real soak)")
	soakTerminals = flag.Int("soak-terminals", 50, "terminals of TestSoak, in multi-sessions of 10")
	soakSilent    = flag.Int("soak-silent", 6, "connections of TestSoak that go silent mid-poll (half after the request, half mid-body)")
	soakBusMiB    = flag.Int("soak-bus-mib", 64, "bus.max_retained_mib of TestSoak's server")
	soakRetention = flag.Duration("soak-bus-retention", 10*time.Minute, "bus.retention of TestSoak's server (10m minimum); the bound on retained notifications is checked when -soak exceeds it by 30s")
)

// soakPurge is orders.purge_interval of TestSoak's server: how often
// retention runs.
const soakPurge = 5 * time.Second

// silentPolls opens n connections that go silent mid-poll, as tills whose
// Wi-Fi vanishes without a FIN: half send a whole poll request and never
// read the answer, half stop in the middle of the body. The caller closes
// them.
func silentPolls(t *testing.T, url string, n int) []net.Conn {
	t.Helper()
	body := `{"jsonrpc":"2.0","method":"call","id":1,"params":{"channels":["[\"shop\",\"pos.longpolling\",\"1\"]"],"last":0}}`
	var conns []net.Conn
	for i := range n {
		c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		req := fmt.Sprintf("POST /longpolling/poll HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		if i%2 == 1 {
			req = req[:len(req)-len(body)/2]
		}
		if _, err := c.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	return conns
}

// sample is a reading of the published-notifications counter.
type sample struct {
	at        time.Time
	published float64
}

// scrape returns the value of the unlabelled metric name on url/metrics.
func scrape(t *testing.T, url, name string) float64 {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	t.Fatalf("%s/metrics has no %s", url, name)
	return 0
}

// storeOrders returns uid → revision of the draft orders of multi-session
// ms as the server lists them to an observer POS (an immediate sync_all,
// which pushes nothing).
func storeOrders(t *testing.T, url string, ms int) map[string]int {
	orders, _ := listOrders(t, url, ms, 900+ms)
	out := make(map[string]int, len(orders))
	for uid, d := range orders {
		out[uid] = n(d["revision_ID"])
	}
	return out
}

// TestSoak runs -soak-terminals simulated Odoo 12 tills (apptest.Till: the
// client's start-up, poller, gap detection and sync_all handling) against
// a real possync process for -soak, at a busy-shop rate (each till writes
// every 1-3 s), while some drop their link and reconnect (a cancelled
// poll, then the pushed sync_all the client sends on reconnect). At the
// end every till holds exactly the store's orders at the store's
// revisions, and the server's goroutines and RSS have not grown (printed).
// -soak-silent connections go silent mid-poll for the whole run. The
// store size and retained notifications are printed at start and end; a
// run longer than -soak-bus-retention also checks that retention keeps
// only the notifications of the last retention period.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak skipped in -short mode")
	}
	nt := *soakTerminals
	// Every till polls from 127.0.0.1, where a shop's tills have an address
	// each: the per-address cap is set above the fleet (a till reconnecting
	// may briefly hold two polls), so it is on but must never bite.
	capPerClient := nt + *soakSilent + 8
	c := startChildWith(t, childOptions{dir: t.TempDir(), config: fmt.Sprintf(
		"[bus]\nretention = %q\nmax_retained_mib = %d\n[orders]\nretention = \"1m\"\npurge_interval = %q\n"+
			"[security]\nmax_polls_per_client = %d\n",
		soakRetention.String(), *soakBusMiB, soakPurge.String(), capPerClient)})
	tills := make([]*apptest.Till, nt)
	for i := range tills {
		ms := int64(i/10 + 1)
		tills[i] = apptest.NewTill(t, c.url, apptest.TerminalConfig{DB: "shop", MultiSessionID: ms, POSID: int64(i + 1),
			UserID: int64(i + 1), SessionID: int64(1000 + i), LoginNumber: 1, RunID: 1})
		if err := tills[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	silent := silentPolls(t, c.url, *soakSilent) // part of the steady state: a shop always has dead tills
	defer func() {
		for _, sc := range silent {
			sc.Close()
		}
	}()
	time.Sleep(2 * time.Second) // let every poller park before the baseline
	g0, rss0 := scrape(t, c.url, "go_goroutines"), scrape(t, c.url, "process_resident_memory_bytes")
	conns0 := pollCounts(t, c.url).OpenConns
	size0, kept0 := scrape(t, c.url, "possync_store_bytes"), scrape(t, c.url, "possync_bus_retained_notifications")
	samples := []sample{{time.Now(), scrape(t, c.url, "possync_notifications_published_total")}}

	var updates, drops atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(*soakFor)
	for i, tl := range tills {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			var mine []apptest.Order
			seq := int64(1)
			for time.Now().Before(deadline) && !t.Failed() {
				time.Sleep(time.Duration(1000+rng.IntN(2000)) * time.Millisecond)
				switch {
				case rng.IntN(40) == 0: // the Wi-Fi drops mid-poll, then comes back
					drops.Add(1)
					tl.StopPolling()
					time.Sleep(time.Duration(500+rng.IntN(2000)) * time.Millisecond)
					tl.StartPolling()
					if _, err := tl.SyncAll(false, ""); err != nil {
						t.Errorf("%v reconnect sync_all: %v", tl, err)
					}
				case len(mine) == 0 || rng.IntN(3) == 0:
					o, err := tl.CreateOrder(seq)
					if err != nil {
						t.Errorf("%v create: %v", tl, err)
						continue
					}
					seq++
					mine = append(mine, o)
					updates.Add(1)
				default:
					o := mine[rng.IntN(len(mine))]
					o.SetQty(o.Lines()[0]["uid"].(string), float64(1+rng.IntN(9)))
					if _, err := tl.UpdateOrder(o); err != nil {
						t.Errorf("%v update: %v", tl, err)
						continue
					}
					updates.Add(1)
				}
			}
		})
	}
	for time.Now().Before(deadline) && !t.Failed() {
		time.Sleep(min(5*time.Second, time.Until(deadline)+time.Millisecond))
		samples = append(samples, sample{time.Now(), scrape(t, c.url, "possync_notifications_published_total")})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// Every till converges on the store: the same orders (wait up to a
	// minute for the last notifications; this is convergence, not speed).
	for ms := 1; ms <= (nt+9)/10; ms++ {
		want := storeOrders(t, c.url, ms)
		wantUIDs := make([]string, 0, len(want))
		for uid := range want {
			wantUIDs = append(wantUIDs, uid)
		}
		slices.Sort(wantUIDs)
		for _, tl := range tills[(ms-1)*10 : min(ms*10, nt)] {
			var got []string
			for end := time.Now().Add(time.Minute); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
				if got = tl.OrderUIDs(); slices.Equal(got, wantUIDs) {
					break
				}
			}
			if !slices.Equal(got, wantUIDs) {
				t.Errorf("%v holds %d orders, the store %d: %v vs %v (it sent remove_order for %v)", tl, len(got), len(wantUIDs), got, wantUIDs, tl.RemovesSent())
			}
			if errs := tl.Errors(); len(errs) > 0 {
				t.Errorf("%v: %v", tl, errs)
			}
		}
	}
	h := pollCounts(t, c.url)
	if h.Capped != 0 {
		t.Errorf("%d polls answered early by max_polls_per_client %d (%d tills, %d silent connections): the cap bites an ordinary fleet",
			h.Capped, capPerClient, nt, len(silent))
	} else {
		fmt.Printf("soak: %d polls released after their client left, none answered early by the per-address cap\n", h.Released)
	}
	g1, rss1 := scrape(t, c.url, "go_goroutines"), scrape(t, c.url, "process_resident_memory_bytes")
	fmt.Printf("soak: %v, %d terminals, %d updates, %d link drops; server goroutines %d → %d (open connections %d → %d), RSS %.1f → %.1f MiB\n",
		*soakFor, nt, updates.Load(), drops.Load(), int(g0), int(g1), conns0, h.OpenConns, rss0/(1<<20), rss1/(1<<20))
	size1, kept1 := scrape(t, c.url, "possync_store_bytes"), scrape(t, c.url, "possync_bus_retained_notifications")
	published := scrape(t, c.url, "possync_notifications_published_total")
	fmt.Printf("soak: %d silent connections; store %.1f → %.1f MiB, retained notifications %d → %d of %d published (bus.retention %v)\n",
		len(silent), size0/(1<<20), size1/(1<<20), int(kept0), int(kept1), int(published), *soakRetention)
	// Bus retention bounds what is kept: at most what was published in the
	// last retention, plus a purge interval and some slack, is retained.
	if *soakFor >= *soakRetention+30*time.Second {
		cut := time.Now().Add(-*soakRetention - soakPurge - 10*time.Second)
		var before float64
		for _, sm := range samples {
			if sm.at.Before(cut) {
				before = sm.published
			}
		}
		if bound := published - before; kept1 > bound {
			t.Errorf("%d notifications retained, more than the %d published in the last bus.retention (+%v): retention does not prune",
				int(kept1), int(bound), soakPurge+10*time.Second)
		} else {
			fmt.Printf("soak: retention bound holds: %d retained ≤ %d published since %s\n", int(kept1), int(bound), cut.Format(time.TimeOnly))
		}
	} else {
		fmt.Printf("soak: retention bound not checked: -soak %v is shorter than -soak-bus-retention %v + 30s\n", *soakFor, *soakRetention)
	}
	// fasthttp serves each open connection on a goroutine of its own; the
	// tills open more keep-alive connections once they write than at the
	// baseline (the poll storm of the per-address cap used to hide that).
	if g1-float64(h.OpenConns) > g0-float64(conns0)+25 {
		t.Errorf("server goroutines grew from %d to %d, open connections from %d to %d", int(g0), int(g1), conns0, h.OpenConns)
	}
	if rss1 > 2*rss0+64<<20 {
		t.Errorf("server RSS grew from %.1f to %.1f MiB", rss0/(1<<20), rss1/(1<<20))
	}
}

// pollCounts reads the poll counters of GET /healthz.
func pollCounts(t *testing.T, url string) (h struct {
	Released  int `json:"polls_released_client_gone"`
	Capped    int `json:"polls_answered_client_cap"`
	OpenConns int `json:"open_conns"`
}) {
	t.Helper()
	resp, err := http.Get(url + "/healthz")
	if err != nil {
		t.Fatalf("healthz: %v", err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatalf("healthz: %v", err)
	}
	return h
}
