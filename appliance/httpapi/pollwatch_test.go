package httpapi

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"
)

// BenchmarkPollWatchScan measures one pass of the poll watcher over 1000
// parked polls on real loopback connections whose clients are alive: the
// cost the watcher adds every PollWatchInterval.
func BenchmarkPollWatchScan(b *testing.B) {
	const polls = 1000
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	w := newPollWatch(0, time.Second, slog.New(slog.DiscardHandler), newRateLog(time.Minute))
	for range polls {
		client, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		defer client.Close()
		server, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		defer server.Close()
		_, cancel := context.WithCancel(context.Background())
		defer cancel()
		w.park("127.0.0.1", server, cancel)
	}
	var scratch []*parkedPoll
	b.ReportAllocs()
	for b.Loop() {
		scratch = w.scan(scratch)
	}
	if _, released, _ := w.stats(); released != 0 {
		b.Fatalf("released %d live polls", released)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/polls, "ns/poll")
}
