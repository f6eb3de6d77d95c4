package httpapi_test

// Benchmarks over real sockets against a real server (fasthttp + Badger
// with synced writes). Client and server run in this process, so
// allocations count both sides.
//
//	go test -run '^$' -bench . -benchtime 2s ./appliance/httpapi/

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"possync/appliance/apptest"
)

// drain reads the notifications of terms until the benchmark ends.
func drain(b *testing.B, terms ...*apptest.Terminal) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for _, term := range terms {
		wg.Go(func() {
			for {
				select {
				case <-term.Notifications():
				case <-done:
					return
				}
			}
		})
	}
	b.Cleanup(func() { close(done); wg.Wait() })
}

// BenchmarkUpdateOrderHTTP: one POS updates its order over and over; each
// update is committed and broadcast to the 3 polling POSes of the
// multi-session.
func BenchmarkUpdateOrderHTTP(b *testing.B) { benchUpdateOrder(b, noScrape) }

// BenchmarkUpdateOrderHTTPWhileScraping is BenchmarkUpdateOrderHTTP with a
// client fetching /metrics and /status.json back to back the whole time
// (hundreds per second, far more often than any Prometheus or status
// page): the worst case of scraping on the update path. On a small
// machine it mostly measures the CPU the scrapes take from the updates.
func BenchmarkUpdateOrderHTTPWhileScraping(b *testing.B) { benchUpdateOrder(b, 0) }

// BenchmarkUpdateOrderHTTPScraped10PerSecond is BenchmarkUpdateOrderHTTP
// with /metrics and /status.json fetched in turn every 100 ms: still 150
// times Prometheus's usual 15 s and 30 times an open status page, so any
// lock a scrape shared with an update would show here.
func BenchmarkUpdateOrderHTTPScraped10PerSecond(b *testing.B) {
	benchUpdateOrder(b, 100*time.Millisecond)
}

// noScrape: no scraping client.
const noScrape = -1

// benchUpdateOrder measures update_order with a client scraping every
// scrapeEvery (0 = back to back, noScrape = none).
func benchUpdateOrder(b *testing.B, scrapeEvery time.Duration) {
	srv := newServer(b, apptest.Options{PollHold: 5 * time.Second})
	terms := []*apptest.Terminal{
		openPOS(b, srv, cfg("bench", 1, 1, 2)),
		openPOS(b, srv, cfg("bench", 1, 2, 3)),
		openPOS(b, srv, cfg("bench", 1, 3, 4)),
	}
	drain(b, terms...)
	w := terms[0]
	o := w.NewOrder(1)
	l := w.AddLine(o, 50, 1, 4.8)
	w.AddLine(o, 51, 2, 1.5)
	if _, err := w.UpdateOrder(o); err != nil {
		b.Fatal(err)
	}
	var scrapes atomic.Int64
	scrape := scrapeEvery != noScrape
	if scrape {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			for i := 0; ; i++ {
				var tick <-chan time.Time
				if scrapeEvery > 0 {
					tick = time.After(scrapeEvery)
				}
				select {
				case <-stop:
					return
				default:
				}
				path := "/metrics"
				if i%2 == 1 {
					path = "/status.json"
				}
				resp, err := http.Get(srv.URL + path)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				scrapes.Add(1)
				if tick != nil {
					select {
					case <-stop:
						return
					case <-tick:
					}
				}
			}
		})
		b.Cleanup(func() { close(stop); wg.Wait() })
	}
	lat := make([]time.Duration, 0, 1024)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		o.SetQty(l, float64(i%7+1))
		start := time.Now()
		res, err := w.UpdateOrder(o)
		lat = append(lat, time.Since(start))
		if err != nil || res["action"] != "update_revision_ID" {
			b.Fatalf("update %d = %v, %v", i, res, err)
		}
	}
	b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "updates/s")
	slices.Sort(lat)
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	b.ReportMetric(us(lat[len(lat)/2]), "p50-µs")
	b.ReportMetric(us(lat[(len(lat)-1)*99/100]), "p99-µs")
	if scrape {
		b.ReportMetric(float64(scrapes.Load())/b.Elapsed().Seconds(), "scrapes/s")
	}
}

// BenchmarkUpdateOrderHTTPParallel: 8 POSes of one multi-session update
// their own orders concurrently (the writes of one multi-session are
// serialized; this shows what commit batching buys).
func BenchmarkUpdateOrderHTTPParallel(b *testing.B) {
	srv := newServer(b, apptest.Options{PollHold: 5 * time.Second})
	terms := make([]*apptest.Terminal, 8)
	for i := range terms {
		terms[i] = openPOS(b, srv, cfg("bench", 1, int64(i+1), int64(i+2)))
	}
	drain(b, terms...)
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := terms[int(next.Add(1)-1)%len(terms)]
		o := w.NewOrder(next.Add(1) + 100)
		l := w.AddLine(o, 50, 1, 4.8)
		for i := 0; pb.Next(); i++ {
			o.SetQty(l, float64(i%7+1))
			res, err := w.UpdateOrder(o)
			if err != nil || res["action"] != "update_revision_ID" {
				b.Errorf("update = %v, %v", res, err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "updates/s")
}

// BenchmarkPublishToWake: a poll waits; a PING publishes its PONG; the time
// from the start of the PING request to the arrival of the poll's answer
// (an upper bound of publish→wake: it includes the PING's own request).
func BenchmarkPublishToWake(b *testing.B) { benchPublishToWake(b, 0) }

// BenchmarkPublishToWakeParked1000: the same with 1000 other polls parked
// on their own connections, which the poll watcher peeks at every second.
func BenchmarkPublishToWakeParked1000(b *testing.B) { benchPublishToWake(b, 1000) }

// BenchmarkPublishToWakeTLS is BenchmarkPublishToWake over HTTPS (the
// poll and the PING on kept-alive TLS connections).
func BenchmarkPublishToWakeTLS(b *testing.B) { benchPublishToWakeOn(b, 0, true) }

func benchPublishToWake(b *testing.B, parked int) { benchPublishToWakeOn(b, parked, false) }

func benchPublishToWakeOn(b *testing.B, parked int, overTLS bool) {
	srv := newServer(b, apptest.Options{PollHold: 50 * time.Second, MaxPollsPerClient: -1, TLS: overTLS})
	for i := range parked {
		startPoll(b, srv.URL, nil, fmt.Sprintf(`["bench","pos.longpolling","%d"]`, 1000+i))
	}
	if parked > 0 {
		waitHealth(b, srv.URL, 30*time.Second, "parked polls", func(h health, _ int) bool { return h.Waiting == parked })
	}
	url, c := srv.URL, cfg("bench", 1, 1, 2)
	if overTLS {
		url, c.RootCAs = srv.TLSURL, srv.RootCAs
	}
	a := apptest.NewTerminal(b, url, c)
	a.StartPolling()
	if _, err := a.Barrier(wait); err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, b.N)
	rtt := make([]time.Duration, 0, b.N) // the PING's own round trip, for comparison
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		time.Sleep(time.Millisecond) // let the poller send its next poll and wait
		b.StartTimer()
		start := time.Now()
		if _, err := a.Ping(); err != nil {
			b.Fatal(err)
		}
		rtt = append(rtt, time.Since(start))
		pong, _, err := a.WaitFor(wait, "PONG", apptest.Notification.IsPong)
		if err != nil {
			b.Fatal(err)
		}
		lat = append(lat, pong.At.Sub(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	slices.Sort(rtt)
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	b.ReportMetric(us(lat[len(lat)/2]), "p50-µs")
	b.ReportMetric(us(lat[(len(lat)-1)*99/100]), "p99-µs")
	b.ReportMetric(us(rtt[len(rtt)/2]), "ping-rtt-p50-µs")
}

// BenchmarkScrape: one GET of /metrics, /status.json or / with 3 polling
// tills in one multi-session (client and server in this process).
func BenchmarkScrape(b *testing.B) {
	srv := newServer(b, apptest.Options{PollHold: 5 * time.Second})
	terms := []*apptest.Terminal{
		openPOS(b, srv, cfg("bench", 1, 1, 2)),
		openPOS(b, srv, cfg("bench", 1, 2, 3)),
		openPOS(b, srv, cfg("bench", 1, 3, 4)),
	}
	drain(b, terms...)
	for _, path := range []string{"/metrics", "/status.json", "/"} {
		b.Run(path, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				resp, err := http.Get(srv.URL + path)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("GET %s = %d", path, resp.StatusCode)
				}
			}
		})
	}
}
