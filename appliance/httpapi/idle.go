package httpapi

import (
	"net"
	"net/netip"
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

// evictFor makes room for a newcomer from address from: it closes the
// connection idle longest, if one has been idle for at least minIdleEvict.
// Failing that, when one other address holds more than hog connections
// (a quarter of the limit), it closes that address's connection idle
// longest at once: one client opening connections up to http.max_conns
// must not lock every till out even for a second. It reports whether it
// closed one.
func (s *idleSet) evictFor(from netip.Addr, hog int) bool {
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
	if oldest == nil {
		oldest = s.hogsIdle(from, hog)
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

// hogsIdle returns the connection idle longest of the address other than
// from holding the most connections, if it holds more than hog; nil
// otherwise. Called with s.mu held, only at the limit.
func (s *idleSet) hogsIdle(from netip.Addr, hog int) *conn {
	count := make(map[netip.Addr]int)
	var top netip.Addr
	for c := range s.conns {
		if c.host == from {
			continue
		}
		count[c.host]++
		if count[c.host] > count[top] {
			top = c.host
		}
	}
	if count[top] <= hog {
		return nil
	}
	var oldest *conn
	for c := range s.conns {
		if c.host != top || c.busy.Load() {
			continue
		}
		if oldest == nil || c.idleSince.Load() < oldest.idleSince.Load() {
			oldest = c
		}
	}
	return oldest
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
