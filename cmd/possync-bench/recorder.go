package main

import (
	"slices"
	"strconv"
	"sync"
	"time"
)

// termInfo is one simulated terminal: a POS config of one multi-session.
type termInfo struct {
	idx     int // 0..N-1
	ms      int // multi-session index 0..S-1
	pos     int // pos.config id
	session int // pos.session id
	login   int // login_number
	user    int // pos.user id
}

// layout spreads n terminals over s multi-sessions, in contiguous blocks
// whose sizes differ by at most one.
type layout struct {
	terms    []termInfo
	sessions [][]int // terminal indexes per multi-session
}

func newLayout(n, s int) layout {
	l := layout{terms: make([]termInfo, n), sessions: make([][]int, s)}
	for i := range n {
		ms := i * s / n
		l.terms[i] = termInfo{idx: i, ms: ms, pos: i + 1, session: 1000 + i + 1, login: 1, user: 1 + i%50}
		l.sessions[ms] = append(l.sessions[ms], i)
	}
	return l
}

// pendingUpdate is one update on its way to the other terminals of its
// multi-session.
type pendingUpdate struct {
	sched  time.Time // when it was due to be sent (fan-out counts from here)
	sender int
	seq    int64 // per-sender sequence (1, 2, …)
	want   int   // deliveries expected: the other terminals of its multi-session
	got    int
	last   time.Time
	acked  bool
	echo   bool // the sender got its own copy
	done   bool // acknowledged and at every other terminal: fan-out recorded
}

// recorder collects what happens to every update: acknowledgements,
// deliveries (matched by nonce), gaps and errors. Safe for concurrent use.
type recorder struct {
	// mu guards the fields that follow.
	mu         sync.Mutex
	pending    map[string]*pendingUpdate
	lastSeq    map[[2]int]int64 // (receiver, sender) → last per-sender sequence seen
	ack        []time.Duration
	fanout     []time.Duration
	sent       int64
	acked      int64
	deliveries int64
	expected   int64
	gaps       int64
	orderGaps  int64 // a receiver saw a sender's updates out of sequence
	errors     int64
	unknown    int64 // deliveries matching no update in flight
	msgBytes   int64
	lastErr    string
}

func newRecorder() *recorder {
	return &recorder{pending: make(map[string]*pendingUpdate), lastSeq: make(map[[2]int]int64)}
}

// start registers an update before it is sent.
func (r *recorder) start(nonce string, sched time.Time, sender int, seq int64, want, size int) {
	r.mu.Lock()
	r.pending[nonce] = &pendingUpdate{sched: sched, sender: sender, seq: seq, want: want}
	r.sent++
	r.msgBytes += int64(size)
	r.mu.Unlock()
}

// acknowledged records the answer to an update (err nil) or its failure.
func (r *recorder) acknowledged(nonce string, took time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.pending[nonce]
	if err != nil {
		r.errors++
		r.lastErr = err.Error()
		if p != nil && p.got == 0 {
			delete(r.pending, nonce)
		}
		return
	}
	r.acked++
	r.ack = append(r.ack, took)
	if p == nil {
		return
	}
	r.expected += int64(p.want)
	p.acked = true
	r.finish(nonce, p)
}

// finish records p's fan-out when it has been acknowledged and delivered
// to every other terminal, and forgets p once the sender's echo came too.
// r.mu must be held.
func (r *recorder) finish(nonce string, p *pendingUpdate) {
	if !p.done && p.acked && p.got >= p.want {
		p.done = true
		if p.want > 0 {
			r.fanout = append(r.fanout, p.last.Sub(p.sched))
		}
	}
	if p.done && p.echo {
		delete(r.pending, nonce)
	}
}

// deliver records that receiver got the update with nonce at time at. It
// ignores the sender's own echo. The per-sender sequence check counts an
// update a receiver gets out of its sender's order.
func (r *recorder) deliver(receiver int, nonce string, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.pending[nonce]
	if p == nil {
		r.unknown++
		r.lastErr = "POS " + strconv.Itoa(receiver+1) + ": a delivery of an update not in flight (nonce " + nonce + "): duplicate?"
		return
	}
	if p.sender == receiver {
		if p.echo {
			r.unknown++ // a second echo
		}
		p.echo = true
		r.finish(nonce, p)
		return
	}
	k := [2]int{receiver, p.sender}
	if prev := r.lastSeq[k]; p.seq != prev+1 {
		r.orderGaps++
	}
	r.lastSeq[k] = p.seq
	r.deliveries++
	p.got++
	if at.After(p.last) {
		p.last = at
	}
	r.finish(nonce, p)
}

func (r *recorder) gap() {
	r.mu.Lock()
	r.gaps++
	r.mu.Unlock()
}

func (r *recorder) fail(err error) {
	r.mu.Lock()
	r.errors++
	r.lastErr = err.Error()
	r.mu.Unlock()
}

// inFlight returns how many acknowledged updates still miss deliveries.
func (r *recorder) inFlight() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, p := range r.pending {
		if p.acked && !p.done {
			n++
		}
	}
	return n
}

// snapshot is the recorder's figures at one moment.
type snapshot struct {
	sent, acked, deliveries, expected, gaps, orderGaps, errors, unknown int64
	msgBytes                                                            int64
	ackP50, ackP99, fanP50, fanP90, fanP99, fanMax                      time.Duration
	lastErr                                                             string
}

func (r *recorder) snapshot() snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := snapshot{sent: r.sent, acked: r.acked, deliveries: r.deliveries, expected: r.expected, gaps: r.gaps,
		orderGaps: r.orderGaps, errors: r.errors, unknown: r.unknown, msgBytes: r.msgBytes, lastErr: r.lastErr}
	ack := slices.Clone(r.ack)
	fan := slices.Clone(r.fanout)
	slices.Sort(ack)
	slices.Sort(fan)
	s.ackP50, s.ackP99 = quantile(ack, 0.50), quantile(ack, 0.99)
	s.fanP50, s.fanP90, s.fanP99 = quantile(fan, 0.50), quantile(fan, 0.90), quantile(fan, 0.99)
	if len(fan) > 0 {
		s.fanMax = fan[len(fan)-1]
	}
	return s
}

// quantile returns the q-quantile of sorted (nearest rank), 0 if empty.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
