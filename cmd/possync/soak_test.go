package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
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
)

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
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak skipped in -short mode")
	}
	c := startChild(t, t.TempDir())
	nt := *soakTerminals
	tills := make([]*apptest.Till, nt)
	for i := range tills {
		ms := int64(i/10 + 1)
		tills[i] = apptest.NewTill(t, c.url, apptest.TerminalConfig{DB: "shop", MultiSessionID: ms, POSID: int64(i + 1),
			UserID: int64(i + 1), SessionID: int64(1000 + i), LoginNumber: 1, RunID: 1})
		if err := tills[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(2 * time.Second) // let every poller park before the baseline
	g0, rss0 := scrape(t, c.url, "go_goroutines"), scrape(t, c.url, "process_resident_memory_bytes")

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
				t.Errorf("%v holds %d orders, the store %d: %v vs %v", tl, len(got), len(wantUIDs), got, wantUIDs)
			}
			if errs := tl.Errors(); len(errs) > 0 {
				t.Errorf("%v: %v", tl, errs)
			}
		}
	}
	g1, rss1 := scrape(t, c.url, "go_goroutines"), scrape(t, c.url, "process_resident_memory_bytes")
	fmt.Printf("soak: %v, %d terminals, %d updates, %d link drops; server goroutines %d → %d, RSS %.1f → %.1f MiB\n",
		*soakFor, nt, updates.Load(), drops.Load(), int(g0), int(g1), rss0/(1<<20), rss1/(1<<20))
	if g1 > g0+25 {
		t.Errorf("server goroutines grew from %d to %d", int(g0), int(g1))
	}
	if rss1 > 2*rss0+64<<20 {
		t.Errorf("server RSS grew from %.1f to %.1f MiB", rss0/(1<<20), rss1/(1<<20))
	}
}
