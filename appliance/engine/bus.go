package engine

import (
	"context"
	"sort"
	"sync"
	"time"

	"possync/appliance"
)

// Notification is one bus message as returned by Poll.
type Notification struct {
	ID      uint64
	Channel string
	b       *appliance.Broadcast
	i       int
}

// AppendMessage appends the notification's JSON message to dst.
func (n Notification) AppendMessage(dst []byte) []byte { return n.b.AppendMessage(dst, n.i) }

// MessageSize returns an upper bound of the bytes AppendMessage appends,
// so an answer can be rendered into one buffer of the right size.
func (n Notification) MessageSize() int { return len(n.b.Prefix) + len(n.b.Suffix) + 20 }

// Bus is the Odoo-style long-polling bus: notifications on exact-string
// channels with one global, increasing id sequence.
//
// Ids are reserved before an operation commits and become visible strictly
// in id order once every lower reservation has finished, so a poller never
// skips a notification committed later with a lower id (protocol.md §9.2-2).
type Bus struct {
	now func() time.Time // the engine's clock; ages are differences of its readings

	// mu guards the fields that follow. It is a leaf lock.
	mu        sync.Mutex
	next      uint64         // next id to reserve
	newest    uint64         // highest visible id (or the store's LastBusID at start)
	pending   []*reservation // unfinished and finished-but-blocked reservations, id order
	chans     map[string]*chanState
	closed    bool
	published uint64    // notifications made visible since start
	delivered uint64    // notifications answered to polls since start
	waiting   int       // polls currently waiting
	woken     []*waiter // waiters a publish in progress will answer (see answerWokenLocked)

	// retained lists the broadcasts with notifications in chans, in id
	// order (hence born order), and retainedBytes their estimated memory:
	// prune drops the oldest beyond the byte cap even within retention.
	retained      []retainedBroadcast
	retainedBytes int
}

type retainedBroadcast struct {
	firstID uint64
	born    time.Time
	bytes   int
}

// broadcastBytes estimates the memory a retained broadcast holds: its
// rendered message and, per notification, its target and its entry.
func broadcastBytes(bc *appliance.Broadcast) int {
	n := len(bc.Prefix) + len(bc.Suffix) + 64
	for _, t := range bc.Targets {
		n += len(t.Channel) + 96
	}
	return n
}

type chanState struct {
	entries []entry   // ascending id, hence ascending born
	waiters []*waiter // usually one (the POS's own poll); order irrelevant
}

// entry is one retained notification. born is a reading of the bus clock
// (monotonic in production), never a stored wall-clock time: ages and the
// replay window survive clock steps. Entries loaded from an earlier run
// get a bounded born (see load) and are never replayed.
type entry struct {
	id     uint64
	born   time.Time
	replay bool // published by this run: may be replayed to last = 0
	b      *appliance.Broadcast
	i      int
}

// waiter is one parked poll. A publish answers it under Bus.mu (collects
// its notifications into out, takes it off every channel, sets answered)
// before signalling ch, so the woken poll returns without taking Bus.mu
// again: a burst of N woken polls does not queue N times on the lock.
type waiter struct {
	ch  chan struct{}
	pub time.Time // when the first publish woke it (monotonic); guarded by Bus.mu

	// The poll's question, read by the publisher under Bus.mu.
	channels []string
	after    uint64
	replay   bool
	since    time.Time

	// Written under Bus.mu before ch is signalled; read by the poll after
	// it received from ch (the channel orders the accesses) or under Bus.mu.
	woken    bool // queued in Bus.woken
	answered bool // out is the answer; the waiter is off every channel
	out      []Notification
}

type reservation struct {
	first  uint64
	n      uint64
	done   bool
	bcasts []*appliance.Broadcast
	popped chan struct{} // closed once every id up to first+n-1 is visible; nil unless asked for
}

func newBus(lastID uint64, now func() time.Time) *Bus {
	if now == nil {
		now = time.Now
	}
	return &Bus{now: now, next: lastID + 1, newest: lastID, chans: make(map[string]*chanState)}
}

// load makes stored broadcasts (ascending FirstID) visible again after a
// restart. Their stored times come from an earlier run's wall clock, which
// a Pi without a battery-backed clock may have had far off, so they are
// only trusted within bounds (ARCHITECTURE.md "Durability"): such a
// notification counts as at least 0 and at most retention-restartKeep old
// at this start, and as no older than a lower id. It is therefore kept
// between restartKeep (capped at retention) and retention after this start
// and never replayed to a poll with last = 0.
func (b *Bus) load(bcs []appliance.Broadcast, retention time.Duration) {
	now := b.now()
	maxAge := retention - min(retention, restartKeep)
	b.mu.Lock()
	defer b.mu.Unlock()
	var prev time.Time
	for i := range bcs {
		bc := &bcs[i]
		if len(bc.Targets) == 0 {
			continue
		}
		born := now.Add(-storedAge(now, bc.At, maxAge))
		if born.Before(prev) {
			born = prev // a higher id was committed later: it is not older
		}
		prev = born
		b.publishLocked(bc, born, false)
	}
	b.answerWokenLocked()
}

// reserve takes n consecutive ids. The caller must call finish exactly once.
func (b *Bus) reserve(n int) *reservation {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := &reservation{first: b.next, n: uint64(n)}
	b.next += uint64(n)
	if n > 0 {
		b.pending = append(b.pending, r)
	} else {
		r.done = true
	}
	return r
}

// finish marks r committed with the given broadcasts (whose ids lie in r),
// or aborted when bcasts is nil, and publishes every reservation that is no
// longer blocked by a lower unfinished one.
func (b *Bus) finish(r *reservation, bcasts []*appliance.Broadcast) {
	if r.n == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	r.done, r.bcasts = true, bcasts
	for len(b.pending) > 0 && b.pending[0].done {
		p := b.pending[0]
		b.pending[0] = nil
		b.pending = b.pending[1:]
		now := b.now()
		for _, bc := range p.bcasts {
			b.publishLocked(bc, now, true)
		}
		if p.popped != nil {
			close(p.popped)
		}
	}
	b.answerWokenLocked()
}

// answerWokenLocked answers the waiters woken by the publishes just made:
// each gets every notification visible now on its channels (so one answer
// carries all of a burst of commits), leaves its channels and is signalled.
// Called with b.mu held, after the last publish of a batch.
func (b *Bus) answerWokenLocked() {
	for i, w := range b.woken {
		b.woken[i] = nil
		w.out = b.collectLocked(w.channels, w.after, w.replay, w.since)
		b.delivered += uint64(len(w.out))
		b.leaveLocked(w)
		w.answered = true
		w.ch <- struct{}{} // 1-buffered and signalled once: never blocks
	}
	b.woken = b.woken[:0]
}

// leaveLocked takes w off its channels and the waiting count.
func (b *Bus) leaveLocked(w *waiter) {
	b.waiting--
	for _, c := range w.channels {
		if cs := b.chans[c]; cs != nil {
			cs.removeWaiter(w)
		}
	}
}

// removeWaiter takes w off the channel (swapping the last waiter into
// its place) and clears the freed slot, so the slice holds no answered poll.
func (cs *chanState) removeWaiter(w *waiter) {
	for i, x := range cs.waiters {
		if x == w {
			last := len(cs.waiters) - 1
			cs.waiters[i] = cs.waiters[last]
			cs.waiters[last] = nil
			cs.waiters = cs.waiters[:last]
			return
		}
	}
}

func (b *Bus) publishLocked(bc *appliance.Broadcast, born time.Time, replay bool) {
	var now time.Time // read once, and only when a waiter is woken
	rb := retainedBroadcast{firstID: bc.FirstID, born: born, bytes: broadcastBytes(bc)}
	b.retained = append(b.retained, rb)
	b.retainedBytes += rb.bytes
	for i, t := range bc.Targets {
		cs := b.chans[t.Channel]
		if cs == nil {
			cs = &chanState{}
			b.chans[t.Channel] = cs
		}
		id := bc.FirstID + uint64(i)
		cs.entries = append(cs.entries, entry{id: id, born: born, replay: replay, b: bc, i: i})
		for _, w := range cs.waiters {
			if w.woken {
				continue
			}
			if now.IsZero() {
				now = time.Now()
			}
			w.pub, w.woken = now, true
			b.woken = append(b.woken, w)
		}
		if id > b.newest {
			b.newest = id
		}
		b.published++
	}
}

// Newest returns the highest visible notification id.
func (b *Bus) Newest() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.newest
}

// PollRequest is one /longpolling/poll call.
type PollRequest struct {
	Channels []string
	Last     uint64        // highest id the client has seen; 0 = none
	Hold     time.Duration // longest wait when nothing is pending
	Replay   time.Duration // with Last 0: return notifications of this run this young
}

// Poll returns the notifications on the request's channels with id above
// Last, in id order. When there are none it waits up to Hold for one (or
// until ctx is done or the bus closes) and then answers, possibly empty.
//
// Last = 0 replays this run's notifications younger than Replay (§3.1).
// A Last at or above every id ever reserved (a cursor from another bus or
// an earlier box, §9.3-1) counts as the newest visible id: nothing old is
// repeated. Engine.Poll first moves the id sequence past such a cursor
// durably, so that the client's later polls are ordinary.
func (b *Bus) Poll(ctx context.Context, req PollRequest) []Notification {
	if req.Last == 0 {
		out, _ := b.poll(ctx, req, 0, true)
		return out
	}
	b.mu.Lock()
	after := req.Last
	if after >= b.next {
		after = b.newest
	}
	b.mu.Unlock()
	out, _ := b.poll(ctx, req, after, false)
	return out
}

// jump handles a cursor last at or above every id reserved so far. It
// reports future = false for any other cursor. Otherwise after is the
// newest visible id, from which the poll must read, and, when last is
// below ceiling, r reserves every id up to last: the caller commits the
// jump durably, finishes r and waits for r.popped, after which every
// notification below the jump is visible. At or above ceiling r is nil and
// ids do not move.
func (b *Bus) jump(last, ceiling uint64) (r *reservation, after uint64, future bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if last < b.next {
		return nil, 0, false
	}
	if last >= ceiling || b.closed {
		return nil, b.newest, true
	}
	r = &reservation{first: b.next, n: last + 1 - b.next, popped: make(chan struct{})}
	b.next = last + 1
	b.pending = append(b.pending, r)
	return r, b.newest, true
}

// poll answers with the notifications above after (or, with replay, this
// run's notifications younger than req.Replay), waiting as Poll describes.
// It also returns when the publish that woke it happened (zero when it
// answered without waiting or was not woken by a publish).
func (b *Bus) poll(ctx context.Context, req PollRequest, after uint64, replay bool) ([]Notification, time.Time) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, time.Time{}
	}
	since := b.now().Add(-req.Replay)
	if out := b.collectLocked(req.Channels, after, replay, since); len(out) > 0 {
		b.delivered += uint64(len(out))
		b.mu.Unlock()
		return out, time.Time{}
	}
	w := &waiter{ch: make(chan struct{}, 1), channels: req.Channels, after: after, replay: replay, since: since}
	for _, c := range req.Channels {
		cs := b.chans[c]
		if cs == nil {
			cs = &chanState{}
			b.chans[c] = cs
		}
		cs.waiters = append(cs.waiters, w)
	}
	b.waiting++
	b.mu.Unlock()

	t := time.NewTimer(req.Hold)
	select {
	case <-w.ch:
		if w.answered {
			// A publish answered this poll under the lock (answerWokenLocked).
			t.Stop()
			return w.out, w.pub
		}
	case <-t.C:
	case <-ctx.Done():
	}
	t.Stop()

	b.mu.Lock()
	defer b.mu.Unlock()
	if w.answered {
		// Answered by a publish while the timer or ctx fired.
		return w.out, w.pub
	}
	b.leaveLocked(w)
	if b.closed {
		return nil, time.Time{}
	}
	out := b.collectLocked(req.Channels, after, replay, since)
	b.delivered += uint64(len(out))
	return out, w.pub
}

func (b *Bus) collectLocked(channels []string, last uint64, replay bool, since time.Time) []Notification {
	var out []Notification
	for _, c := range channels {
		cs := b.chans[c]
		if cs == nil {
			continue
		}
		var start int
		if replay {
			// Entries of earlier runs precede this run's and are never
			// replayed, so the predicate is monotone in the index.
			start = sort.Search(len(cs.entries), func(i int) bool {
				e := &cs.entries[i]
				return e.replay && !e.born.Before(since)
			})
		} else {
			start = sort.Search(len(cs.entries), func(i int) bool { return cs.entries[i].id > last })
		}
		for _, e := range cs.entries[start:] {
			out = append(out, Notification{ID: e.id, Channel: c, b: e.b, i: e.i})
		}
	}
	if len(channels) > 1 && len(out) > 1 {
		sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	}
	return out
}

// prune drops notifications older than retention (by the bus clock, see
// entry) and, while the retained broadcasts hold more than maxBytes
// (estimated, see broadcastBytes; 0 = no cap), the oldest ones even within
// retention; then channels left with no entries and no waiters. It returns
// the lowest id still retained (or the next id when nothing is retained):
// stored broadcasts below it may go, and the number of notifications the
// cap dropped before their retention ended. A poll whose cursor is below
// what was dropped gets what is left; the client sees the message_ID gap
// and reloads with sync_all (protocol.md §6), as after any retention.
func (b *Bus) prune(retention time.Duration, maxBytes int) (low uint64, capped int) {
	cutoff := b.now().Add(-retention)
	b.mu.Lock()
	defer b.mu.Unlock()
	drop := 0
	for drop < len(b.retained) {
		r := b.retained[drop]
		old := r.born.Before(cutoff)
		if !old && (maxBytes <= 0 || b.retainedBytes <= maxBytes || drop == len(b.retained)-1) {
			break
		}
		b.retainedBytes -= r.bytes
		drop++
	}
	idCut := b.newest + 1
	if drop < len(b.retained) {
		idCut = b.retained[drop].firstID
	}
	b.retained = append(b.retained[:0:0], b.retained[drop:]...)
	low = b.newest + 1
	for name, cs := range b.chans {
		n := sort.Search(len(cs.entries), func(i int) bool { return cs.entries[i].id >= idCut })
		for _, e := range cs.entries[:n] {
			if !e.born.Before(cutoff) {
				capped++
			}
		}
		if n > 0 {
			cs.entries = append(cs.entries[:0:0], cs.entries[n:]...)
		}
		if len(cs.entries) > 0 && cs.entries[0].id < low {
			low = cs.entries[0].id
		}
		if len(cs.entries) == 0 && len(cs.waiters) == 0 {
			delete(b.chans, name)
		}
	}
	for _, p := range b.pending {
		if p.first < low {
			low = p.first
		}
	}
	return low, capped
}

// close wakes every waiting poll; later polls answer at once.
func (b *Bus) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for _, cs := range b.chans {
		for _, w := range cs.waiters {
			select {
			case w.ch <- struct{}{}:
			default:
			}
		}
	}
}

// BusStats is a snapshot of the bus counters.
type BusStats struct {
	Newest    uint64 // highest visible id
	Published uint64 // notifications published since start
	Delivered uint64 // notifications answered to polls since start (one per poll answer item)
	Waiting   int    // polls waiting now
	Channels  int    // channels with retained notifications or waiters
	Retained  int    // notifications retained in memory
	// RetainedBytes estimates the memory of the retained notifications
	// (their broadcasts' rendered messages and bookkeeping), in bytes.
	RetainedBytes int
}

func (b *Bus) stats() BusStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := BusStats{Newest: b.newest, Published: b.published, Delivered: b.delivered, Waiting: b.waiting, Channels: len(b.chans), RetainedBytes: b.retainedBytes}
	for _, cs := range b.chans {
		s.Retained += len(cs.entries)
	}
	return s
}
