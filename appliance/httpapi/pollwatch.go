package httpapi

import (
	"container/list"
	"context"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// pollWatch keeps the set of parked long-polls, grouped by client address.
//
// fasthttp does not tell a handler that its client went away, so a poll
// the browser aborted would stay parked, holding its connection, for the
// whole hold. Every interval, one goroutine peeks (MSG_PEEK, non-blocking,
// so no request byte is consumed) at the socket of every parked poll: end
// of stream or an error means the client left, and the poll's context is
// cancelled, which makes the engine answer it at once (the answer goes
// nowhere and fasthttp closes the connection). Live polls pay only a map
// insert and delete.
//
// It also caps the waiting polls of one client address: beyond
// maxPerClient the oldest poll of that address is answered at once, so a
// reloading till never locks itself out and one client cannot hold every
// connection. That poll is answered with an error (see capped), not [],
// because the Odoo 12 bus polls again at once after an answer but waits
// 10-30 s after an error: an [] made it come straight back and evict the
// next poll of its address, a loop of thousands of polls a second between
// tills sharing one address.
type pollWatch struct {
	log          *slog.Logger
	limits       *rateLog
	maxPerClient int // 0 = no limit
	interval     time.Duration

	// mu guards the fields that follow. It is a leaf lock.
	mu       sync.Mutex
	byClient map[string]*list.List // of *parkedPoll, oldest first
	released uint64                // polls released because their client left
	evicted  uint64                // polls answered early by the per-client cap
}

type parkedPoll struct {
	client string
	raw    syscall.RawConn // nil when the connection cannot be watched
	cancel context.CancelFunc
	elem   *list.Element // nil once left or evicted
	// capped is set (before cancel) when the poll was answered early
	// because its address parked more than maxPerClient polls.
	capped atomic.Bool
}

func newPollWatch(maxPerClient int, interval time.Duration, log *slog.Logger, limits *rateLog) *pollWatch {
	return &pollWatch{log: log, limits: limits, maxPerClient: maxPerClient, interval: interval,
		byClient: make(map[string]*list.List)}
}

// park registers a poll of client on c; cancel answers it. The caller must
// call leave when the poll returns.
func (w *pollWatch) park(client string, c net.Conn, cancel context.CancelFunc) *parkedPoll {
	p := &parkedPoll{client: client, cancel: cancel}
	if tc, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = tc.NetConn() // *tls.Conn: watch the TCP connection under it
	}
	if sc, ok := c.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			p.raw = raw
		}
	}
	var evict *parkedPoll
	w.mu.Lock()
	l := w.byClient[client]
	if l == nil {
		l = list.New()
		w.byClient[client] = l
	}
	if w.maxPerClient > 0 && l.Len() >= w.maxPerClient {
		evict = l.Remove(l.Front()).(*parkedPoll)
		evict.elem = nil
		w.evicted++
	}
	p.elem = l.PushBack(p)
	w.mu.Unlock()
	if evict != nil {
		evict.capped.Store(true)
		evict.cancel()
		if w.limits.allow("max_polls_per_client", client) {
			w.log.Warn("answered the oldest waiting poll of a client early: too many waiting polls from one address",
				"remote", client, "max_polls_per_client", w.maxPerClient)
		}
	}
	return p
}

// leave removes p (if still parked).
func (w *pollWatch) leave(p *parkedPoll) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if p.elem == nil {
		return
	}
	l := w.byClient[p.client]
	l.Remove(p.elem)
	p.elem = nil
	if l.Len() == 0 {
		delete(w.byClient, p.client)
	}
}

// run checks the parked polls every interval until stop is closed.
func (w *pollWatch) run(stop <-chan struct{}) {
	t := time.NewTicker(w.interval)
	defer t.Stop()
	var scratch []*parkedPoll
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		scratch = w.scan(scratch)
	}
}

// scan peeks at the socket of every parked poll, outside the lock, and
// cancels the polls whose client left. It returns scratch for reuse.
func (w *pollWatch) scan(scratch []*parkedPoll) []*parkedPoll {
	polls := scratch[:0]
	w.mu.Lock()
	for _, l := range w.byClient {
		for e := l.Front(); e != nil; e = e.Next() {
			if p := e.Value.(*parkedPoll); p.raw != nil {
				polls = append(polls, p)
			}
		}
	}
	w.mu.Unlock()
	for i, p := range polls {
		if peerGone(p.raw) {
			w.mu.Lock()
			w.released++
			w.mu.Unlock()
			p.cancel()
		}
		polls[i] = nil
	}
	return polls
}

// stats returns the polls parked now and the counters.
func (w *pollWatch) stats() (parked int, released, evicted uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, l := range w.byClient {
		parked += l.Len()
	}
	return parked, w.released, w.evicted
}
