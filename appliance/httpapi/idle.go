package httpapi

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// A browser keeps idle keep-alive sockets open to a host it talked to (up
// to six, plus preconnects), and a socket that never sends a request holds
// a slot until the read timeout. Counted against http.max_conns, a few
// tills and the manager's phone could fill a small limit and lock every
// till out with ServerBusy. So when a connection arrives at the limit, the
// listener closes the connection that has been idle longest instead of
// refusing the newcomer: idle means no request is being handled on it (a
// waiting long-poll is busy) and it has been so for at least minIdleEvict.
// Closing an idle keep-alive connection is allowed by HTTP/1.1 (RFC 9112
// §9.6); browsers open a new one, and re-send a request that met a closed
// reused socket.

// minIdleEvict is how long a connection must have been idle before it may
// be closed for a newcomer: a connection that just finished a request is
// probably about to send the next one.
const minIdleEvict = time.Second

// idleSet tracks the connections served by a listener and when each last
// became idle.
type idleSet struct {
	born time.Time // monotonic origin of the idle stamps

	// mu guards conns.
	mu    sync.Mutex
	conns map[*conn]struct{}

	evicted atomic.Uint64 // idle connections closed for a newcomer
}

func newIdleSet() *idleSet {
	return &idleSet{born: time.Now(), conns: make(map[*conn]struct{})}
}

func (s *idleSet) stamp() int64 { return int64(time.Since(s.born)) }

// track registers a newly accepted connection as idle since now.
func (s *idleSet) track(c *conn) {
	c.idleSince.Store(s.stamp())
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
}

func (s *idleSet) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// evictOldest closes the connection idle longest, if one has been idle for
// at least minIdleEvict, and reports whether it did.
func (s *idleSet) evictOldest() bool {
	limit := s.stamp() - int64(minIdleEvict)
	var oldest *conn
	oldestAt := limit + 1
	s.mu.Lock()
	for c := range s.conns {
		if c.busy.Load() {
			continue
		}
		if at := c.idleSince.Load(); at < oldestAt {
			oldest, oldestAt = c, at
		}
	}
	if oldest != nil {
		delete(s.conns, oldest)
	}
	s.mu.Unlock()
	if oldest == nil {
		return false
	}
	s.evicted.Add(1)
	_ = oldest.Close()
	return true
}

// begin marks c busy: a request is being handled on it.
func (c *conn) begin() { c.busy.Store(true) }

// end marks c idle again from now.
func (c *conn) end() {
	c.idleSince.Store(c.l.idle.stamp())
	c.busy.Store(false)
}

// servedConn returns the listener's conn under c, looking through TLS.
func servedConn(c net.Conn) (*conn, bool) {
	if tc, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = tc.NetConn()
	}
	cn, ok := c.(*conn)
	return cn, ok
}
