package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// ackInfo is what a side's answer to an update tells the terminal.
type ackInfo struct {
	rev     int64 // revision_ID the order now has
	orderID int64 // sequence_number the server gave it (0 = unchanged)
}

// target is one server under test (possync or the nchan peer) seen
// through its terminals.
type target interface {
	// name is "possync" or "nchan".
	name() string
	// perUpdate says in one line what the server does per update.
	perUpdate() string
	// open starts the terminals of l: start-up sync, long-polls parked.
	// Deliveries go to rec until ctx is done.
	open(ctx context.Context, l layout, rec *recorder) error
	// send delivers update message msg of order o from terminal t and
	// returns when it is acknowledged.
	send(t *termInfo, o *benchOrder, msg []byte) (ackInfo, error)
	// procs returns the server's processes, for /proc figures (nil when
	// not local).
	procs() []int
	// close stops the terminals (not the server).
	close()
}

// loadParams is one fan-out or throughput run.
type loadParams struct {
	pos, sessions int
	rate          float64 // updates/s over all terminals; 0 = throughput mode
	writers       int     // throughput mode: writers per multi-session
	duration      time.Duration
	drain         time.Duration // wait this long after the last ack for deliveries
	progress      time.Duration // 0 = no progress line
}

// result is the outcome of one run against one target.
type result struct {
	side      string
	perUpdate string
	p         loadParams
	snap      snapshot
	elapsed   time.Duration // from the first scheduled update to the last ack
	rssMiB    float64
	cpu       time.Duration
	benchCPU  time.Duration
	procsSeen int
}

// runLoad opens the terminals of tg and drives update_order traffic
// through them: at rate p.rate (each update due at a fixed time, handed to
// its terminal's FIFO queue like ms.js's send queue) or, in throughput
// mode, back to back from p.writers terminals per multi-session.
func runLoad(ctx context.Context, tg target, p loadParams, progress io.Writer) (result, error) {
	l := newLayout(p.pos, p.sessions)
	rec := newRecorder()
	octx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := tg.open(octx, l, rec); err != nil {
		return result{}, fmt.Errorf("%s: open %d terminals: %w", tg.name(), p.pos, err)
	}
	defer tg.close()

	books := make([]*termOrders, p.pos)
	for i := range books {
		books[i] = newTermOrders(&l.terms[i], uint64(i+1))
	}
	var nonceSeq atomic.Uint64
	var seqs = make([]int64, p.pos)
	// update sends one update of terminal i, due at sched.
	update := func(i int, sched time.Time, buf []byte) []byte {
		t := &l.terms[i]
		o := books[i].next()
		nonce := nonceFor(nonceSeq.Add(1) + 36*36*36*36) // ≥ 5 digits
		buf = appendMessage(buf[:0], t, o, nonce)
		seqs[i]++
		rec.start(nonce, sched, i, seqs[i], len(l.sessions[t.ms])-1, len(buf))
		start := time.Now()
		a, err := tg.send(t, o, buf)
		rec.acknowledged(nonce, time.Since(start), err)
		if err == nil {
			o.onServer = true
			if a.rev > 0 {
				o.rev = a.rev
			}
			if a.orderID > 0 {
				o.seq = a.orderID
			}
		}
		return buf
	}

	procs := tg.procs()
	cpu0 := cpuOf(procs)
	bench0 := cpuOf([]int{selfPID()})
	stopProgress := startProgress(tg.name(), rec, p.progress, progress)
	begin := time.Now()
	end := begin.Add(p.duration)
	var wg sync.WaitGroup
	if p.rate > 0 {
		queues := make([]chan time.Time, p.pos)
		for i := range queues {
			queues[i] = make(chan time.Time, 1024)
			wg.Go(func() {
				var buf []byte
				for sched := range queues[i] {
					buf = update(i, sched, buf)
				}
			})
		}
		// Updates go round the terminals in a shuffled order, so every
		// terminal sends about rate/pos per second.
		order := newLayoutOrder(p.pos)
		interval := time.Duration(float64(time.Second) / p.rate)
	schedule:
		for k := 0; ; k++ {
			sched := begin.Add(time.Duration(k) * interval)
			if !sched.Before(end) {
				break
			}
			if d := time.Until(sched); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					break schedule
				}
			} else if ctx.Err() != nil { // behind schedule: still stop when asked
				break schedule
			}
			select {
			case queues[order[k%len(order)]] <- sched:
			default:
				rec.fail(fmt.Errorf("terminal %d: send queue full (updates not acknowledged fast enough)", order[k%len(order)]))
			}
		}
		for _, q := range queues {
			close(q)
		}
	} else {
		for _, members := range l.sessions {
			for _, i := range members[:min(p.writers, len(members))] {
				wg.Go(func() {
					var buf []byte
					for ctx.Err() == nil && time.Now().Before(end) {
						buf = update(i, time.Now(), buf)
					}
				})
			}
		}
	}
	wg.Wait()
	elapsed := time.Since(begin)
	deadline := time.Now().Add(p.drain)
	for rec.inFlight() > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	stopProgress()
	res := result{side: tg.name(), perUpdate: tg.perUpdate(), p: p, snap: rec.snapshot(), elapsed: elapsed, procsSeen: len(procs)}
	if len(procs) > 0 {
		if rss := rssOf(procs); rss > 0 {
			res.rssMiB = float64(rss) / 1024
			res.cpu = cpuOf(procs) - cpu0
		} else {
			// The server died during the run: no figures rather than
			// 0 MiB and a negative CPU time.
			res.procsSeen = 0
			if progress != nil {
				fmt.Fprintf(progress, "%s: server process %v gone at the end of the run: no RSS/CPU figures\n", tg.name(), procs)
			}
		}
	}
	res.benchCPU = cpuOf([]int{selfPID()}) - bench0
	return res, ctx.Err()
}

// newLayoutOrder returns the terminals 0..n-1 in a fixed shuffled order.
func newLayoutOrder(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	x := uint64(88172645463325252)
	for i := n - 1; i > 0; i-- {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		j := int(x % uint64(i+1))
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// startProgress prints one progress line per interval to w until the
// returned function is called.
func startProgress(name string, rec *recorder, every time.Duration, w io.Writer) func() {
	if every <= 0 || w == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	wg.Go(func() {
		tk := time.NewTicker(every)
		defer tk.Stop()
		for {
			select {
			case <-done:
				return
			case <-tk.C:
				s := rec.snapshot()
				fmt.Fprintf(w, "%-7s %5.1fs  acked %6d  deliveries %8d/%-8d  gaps %d  errors %d  ack p50 %s  fan-out p50 %s p99 %s\n",
					name, time.Since(start).Seconds(), s.acked, s.deliveries, s.expected, s.gaps+s.orderGaps, s.errors,
					ms(s.ackP50), ms(s.fanP50), ms(s.fanP99))
			}
		}
	})
	return func() { close(done); wg.Wait() }
}
