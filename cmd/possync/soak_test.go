package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
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

// soakOpenPerTill is how many open orders a till of TestSoak keeps: when it
// has that many, its next action pays the oldest (remove_order, finalized),
// as a busy shop's tables pay. Without payments the open orders, which the
// server holds in memory as the protocol requires, grow for the whole run.
const soakOpenPerTill = 6

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

// sample is a reading of the server's counters during TestSoak.
type sample struct {
	at         time.Time
	published  float64 // possync_notifications_published_total
	anon, file float64 // RssAnon and RssFile of /proc/<pid>/status, bytes
	heap       float64 // go_memstats_heap_inuse_bytes
	bus        float64 // possync_bus_retained_bytes
}

// read takes a sample of the server c.
func read(t *testing.T, c *child) sample {
	sm := sample{at: time.Now(), published: scrape(t, c.url, "possync_notifications_published_total"),
		heap: scrape(t, c.url, "go_memstats_heap_inuse_bytes"), bus: scrape(t, c.url, "possync_bus_retained_bytes")}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		t.Fatalf("server memory: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		switch k {
		case "RssAnon":
			sm.anon = kb * 1024
		case "RssFile":
			sm.file = kb * 1024
		}
	}
	return sm
}

// mib formats bytes as MiB.
func mib(b float64) string { return fmt.Sprintf("%.1f MiB", b/(1<<20)) }

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
// revisions, and the server's goroutines and anonymous RSS have not grown
// (printed; see the end for what "grown" means while the bus window fills).
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
	g0 := scrape(t, c.url, "go_goroutines")
	conns0 := pollCounts(t, c.url).OpenConns
	size0, kept0 := scrape(t, c.url, "possync_store_bytes"), scrape(t, c.url, "possync_bus_retained_notifications")
	samples := []sample{read(t, c)}

	var updates, drops, paid atomic.Int64
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
				case len(mine) >= soakOpenPerTill: // a table pays: its oldest order is paid and removed
					if err := tl.PayOrder(mine[0]); err != nil {
						t.Errorf("%v: %v", tl, err)
						continue
					}
					mine = mine[1:]
					paid.Add(1)
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
		samples = append(samples, read(t, c))
		if sm := samples[len(samples)-1]; len(samples)%12 == 1 {
			fmt.Printf("soak: %s RSS anonymous %s + file-backed %s, Go heap in use %s, bus %s, %d published\n",
				sm.at.Sub(samples[0].at).Round(time.Second), mib(sm.anon), mib(sm.file), mib(sm.heap), mib(sm.bus), int(sm.published))
		}
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
	g1, s0, s1 := scrape(t, c.url, "go_goroutines"), samples[0], read(t, c)
	fmt.Printf("soak: %v, %d terminals, %d updates, %d orders paid, %d link drops; server goroutines %d → %d (open connections %d → %d), RSS anonymous %s → %s, file-backed %s → %s\n",
		*soakFor, nt, updates.Load(), paid.Load(), drops.Load(), int(g0), int(g1), conns0, h.OpenConns, mib(s0.anon), mib(s1.anon), mib(s0.file), mib(s1.file))
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
	// Memory: the anonymous RSS (Go heap, Badger's tables in memory) is
	// what a leak grows; file-backed RSS is the store's mmap'd files, page
	// cache the kernel drops under pressure, bounded by the store's size.
	// While the bus window fills (bus.retention, or bus.max_retained_mib at
	// a busy rate) memory grows by design, so a short run gets a gross
	// bound. Once the window is full and the first third of the run is
	// over (buffers, Badger's memtable), the anonymous RSS must stay flat.
	if raceEnabled {
		fmt.Println("soak: memory bounds not judged under -race (the detector multiplies memory); build/test.sh runs TestSoak again without it")
		return
	}
	warm := -1
	for i, sm := range samples {
		el := sm.at.Sub(s0.at)
		if el >= *soakFor/3 && (sm.bus >= 0.9*float64(*soakBusMiB<<20) || el >= *soakRetention) {
			warm = i
			break
		}
	}
	if warm < 0 || s1.at.Sub(samples[warm].at) < 2*time.Minute {
		if s1.anon > s0.anon+64<<20 {
			t.Errorf("server anonymous RSS grew from %s to %s while the bus window filled (bound +64 MiB)", mib(s0.anon), mib(s1.anon))
		}
		fmt.Printf("soak: flat-memory check not done: the bus window (%d MiB, %v) was not full two minutes before the end; run longer or lower -soak-bus-mib\n",
			*soakBusMiB, *soakRetention)
		return
	}
	// Levels, not single readings: the anonymous RSS follows the GC's saw
	// tooth (up to twice the live heap before a collection), so the median
	// of the minute after the window filled is compared with the median of
	// the last minute.
	level := func(from, to time.Time) float64 {
		var v []float64
		for _, sm := range append(samples, s1) {
			if !sm.at.Before(from) && !sm.at.After(to) {
				v = append(v, sm.anon)
			}
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	w := samples[warm]
	first, last := level(w.at, w.at.Add(time.Minute)), level(s1.at.Add(-time.Minute), s1.at)
	if limit := first*1.15 + 8<<20; last > limit {
		t.Errorf("server anonymous RSS not flat once the bus window was full: median %s in the minute from %v, %s in the last minute (limit %s)",
			mib(first), w.at.Sub(s0.at).Round(time.Second), mib(last), mib(limit))
	} else {
		fmt.Printf("soak: anonymous RSS flat once the bus window was full: median %s in the minute from %v, %s in the last minute (limit %s)\n",
			mib(first), w.at.Sub(s0.at).Round(time.Second), mib(last), mib(limit))
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
