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

// Bus is the Odoo-style long-polling bus: notifications on exact-string
// channels with one global, increasing id sequence.
//
// Ids are reserved before an operation commits and become visible strictly
// in id order once every lower reservation has finished, so a poller never
// skips a notification committed later with a lower id (protocol.md §9.2-2).
type Bus struct {
	// mu guards the fields that follow. It is a leaf lock.
	mu        sync.Mutex
	next      uint64         // next id to reserve
	newest    uint64         // highest visible id (or the store's LastBusID at start)
	pending   []*reservation // unfinished and finished-but-blocked reservations, id order
	chans     map[string]*chanState
	closed    bool
	published uint64 // notifications made visible since start
	delivered uint64 // notifications answered to polls since start
	waiting   int    // polls currently waiting
}

type chanState struct {
	entries []entry // ascending id
	waiters map[*waiter]struct{}
}

type entry struct {
	id uint64
	at time.Time
	b  *appliance.Broadcast
	i  int
}

type waiter struct {
	ch  chan struct{}
	pub time.Time // when the first publish woke it (monotonic); guarded by Bus.mu
}

type reservation struct {
	first  uint64
	n      uint64
	done   bool
	bcasts []*appliance.Broadcast
}

func newBus(lastID uint64) *Bus {
	return &Bus{next: lastID + 1, newest: lastID, chans: make(map[string]*chanState)}
}

// load makes stored broadcasts visible again after a restart.
func (b *Bus) load(bcs []appliance.Broadcast, notBefore time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := range bcs {
		bc := &bcs[i]
		if bc.At.Before(notBefore) || len(bc.Targets) == 0 {
			continue
		}
		b.publishLocked(bc)
	}
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
		for _, bc := range p.bcasts {
			b.publishLocked(bc)
		}
	}
}

func (b *Bus) publishLocked(bc *appliance.Broadcast) {
	var now time.Time // read once, and only when a waiter is woken
	for i, t := range bc.Targets {
		cs := b.chans[t.Channel]
		if cs == nil {
			cs = &chanState{}
			b.chans[t.Channel] = cs
		}
		id := bc.FirstID + uint64(i)
		cs.entries = append(cs.entries, entry{id: id, at: bc.At, b: bc, i: i})
		for w := range cs.waiters {
			if w.pub.IsZero() {
				if now.IsZero() {
					now = time.Now()
				}
				w.pub = now
			}
			select {
			case w.ch <- struct{}{}:
			default:
			}
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
	Replay   time.Duration // with Last 0 (or beyond the newest id): return notifications this young
}

// Poll returns the notifications on the request's channels with id above
// Last, in id order. When there are none it waits up to Hold for one (or
// until ctx is done or the bus closes) and then answers, possibly empty.
func (b *Bus) Poll(ctx context.Context, req PollRequest) []Notification {
	out, _ := b.poll(ctx, req)
	return out
}

// poll is Poll that also returns when the publish that woke it happened
// (zero when it answered without waiting or was not woken by a publish).
func (b *Bus) poll(ctx context.Context, req PollRequest) ([]Notification, time.Time) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, time.Time{}
	}
	replay := req.Last == 0 || req.Last > b.newest
	since := time.Now().Add(-req.Replay)
	if out := b.collectLocked(req.Channels, req.Last, replay, since); len(out) > 0 {
		b.delivered += uint64(len(out))
		b.mu.Unlock()
		return out, time.Time{}
	}
	w := &waiter{ch: make(chan struct{}, 1)}
	for _, c := range req.Channels {
		cs := b.chans[c]
		if cs == nil {
			cs = &chanState{}
			b.chans[c] = cs
		}
		if cs.waiters == nil {
			cs.waiters = make(map[*waiter]struct{})
		}
		cs.waiters[w] = struct{}{}
	}
	b.waiting++
	b.mu.Unlock()

	t := time.NewTimer(req.Hold)
	select {
	case <-w.ch:
	case <-t.C:
	case <-ctx.Done():
	}
	t.Stop()

	b.mu.Lock()
	defer b.mu.Unlock()
	b.waiting--
	for _, c := range req.Channels {
		if cs := b.chans[c]; cs != nil {
			delete(cs.waiters, w)
		}
	}
	if b.closed {
		return nil, time.Time{}
	}
	out := b.collectLocked(req.Channels, req.Last, replay, since)
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
			start = sort.Search(len(cs.entries), func(i int) bool { return !cs.entries[i].at.Before(since) })
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

// prune drops notifications older than cutoff and channels left with no
// entries and no waiters. It returns the lowest id still retained (or the
// next id when nothing is retained): stored broadcasts below it may go.
func (b *Bus) prune(cutoff time.Time) uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	low := b.newest + 1
	for name, cs := range b.chans {
		n := sort.Search(len(cs.entries), func(i int) bool { return !cs.entries[i].at.Before(cutoff) })
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
	return low
}

// close wakes every waiting poll; later polls answer at once.
func (b *Bus) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for _, cs := range b.chans {
		for w := range cs.waiters {
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
}

func (b *Bus) stats() BusStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := BusStats{Newest: b.newest, Published: b.published, Delivered: b.delivered, Waiting: b.waiting, Channels: len(b.chans)}
	for _, cs := range b.chans {
		s.Retained += len(cs.entries)
	}
	return s
}
