package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// listener is the TCP listener fasthttp serves from. It adds what
// fasthttp's accept loop lacks:
//
//   - fasthttp stops serving for good on any accept error but a timeout,
//     so EMFILE (one connection too many for the file limit), ENFILE,
//     ENOBUFS or ENOMEM would end HTTP while the process lives on. Accept
//     retries those with a back-off (5 ms doubling to 1 s), logs them and
//     records them for /healthz; only an error that cannot go away (the
//     socket itself is broken) reaches fasthttp, and Server.Failed reports it.
//   - Connections beyond max are answered here, before fasthttp sees them:
//     HTTP 503 with an Odoo-shaped JSON-RPC error and CORS headers, which
//     the POS can show, instead of fasthttp's plain-text refusal.
//   - Its connections can close "lingering" (see conn.Close) so a client
//     whose request was refused unread still reads the answer.
type listener struct {
	net.Listener
	log     *slog.Logger
	limits  *rateLog
	max     int64
	refusal []byte // the whole HTTP response sent to refused connections
	// refusedPreflight answers a refused CORS preflight: a preflight that
	// is not 2xx fails as an opaque network error in the browser, so it is
	// granted (not cached), and the request that follows gets the
	// readable 503 refusal.
	refusedPreflight []byte
	linger           time.Duration
	// screen answers a connection from outside the allowed networks itself
	// and reports whether it did (refusenet.go); nil = none.
	screen func(*conn) bool

	open     atomic.Int64 // connections handed to fasthttp and not yet closed
	refusing atomic.Int64 // refusals being answered
	refused  atomic.Uint64
	idle     *idleSet // served connections, for closing an idle one at the limit (idle.go)

	// failing is the accept error of the current failing run, nil while
	// accepting works.
	failing atomic.Pointer[acceptFailure]

	closeOnce sync.Once
	closed    chan struct{}
}

type acceptFailure struct {
	since, last time.Time // first and latest failure of the run
	err         error     // latest error
}

// acceptStale is how long after the latest failed accept a failing run
// still counts: Accept retries at least every second while it fails, and a
// run ends only at the next successful accept, which may wait for a client.
const acceptStale = 5 * time.Second

// maxRefusing bounds the refusals answered at once; beyond it refused
// connections are closed without an answer.
const maxRefusing = 64

func newListener(ln net.Listener, max int, linger time.Duration, log *slog.Logger, limits *rateLog) *listener {
	msg := fmt.Sprintf("the Sync Server is serving its limit of %d connections (http.max_conns); try again shortly", max)
	body := appendRPCError(nil, nil, codeBusy, msg)
	resp := fmt.Appendf(nil, "HTTP/1.1 503 Service Unavailable\r\nServer: possync\r\nConnection: close\r\n"+
		"Access-Control-Allow-Origin: *\r\nContent-Type: application/json\r\nRetry-After: 5\r\nContent-Length: %d\r\n\r\n", len(body))
	pre := "HTTP/1.1 204 No Content\r\nServer: possync\r\nConnection: close\r\nAccess-Control-Allow-Origin: *\r\n" +
		"Access-Control-Allow-Methods: " + corsAllowMethods + "\r\nAccess-Control-Allow-Headers: " + corsAllowHeaders + "\r\n" +
		"Access-Control-Allow-Private-Network: true\r\nContent-Length: 0\r\n\r\n"
	return &listener{
		Listener: ln, log: log, limits: limits, max: int64(max), refusal: append(resp, body...), refusedPreflight: []byte(pre),
		linger: linger, closed: make(chan struct{}), idle: newIdleSet(),
	}
}

// Accept returns the next connection within the limit. It returns an error
// only when the listener is closed or broken for good.
func (l *listener) Accept() (net.Conn, error) {
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err == nil {
			if f := l.failing.Swap(nil); f != nil {
				l.log.Warn("accepting connections again", "failed_for", time.Since(f.since).Round(time.Millisecond).String(), "err", f.err)
			}
			delay = 0
			host := connHost(c)
			if l.open.Add(1) > l.max && !l.idle.evictFor(host, int(l.max/4)) {
				l.open.Add(-1)
				l.refuse(c)
				continue
			}
			cn := &conn{Conn: c, l: l, host: host}
			l.idle.track(cn)
			if l.screen != nil && l.screen(cn) {
				continue // refused by network, answered in the background (refusenet.go)
			}
			return cn, nil
		}
		if errors.Is(err, net.ErrClosed) {
			return nil, err
		}
		now := time.Now()
		f := &acceptFailure{since: now, last: now, err: err}
		if prev := l.failing.Load(); prev != nil {
			f.since = prev.since
		}
		l.failing.Store(f)
		if !temporaryAcceptError(err) {
			l.log.Error("http listener stopped for good", "err", err)
			return nil, fmt.Errorf("accept: %w", err)
		}
		if l.limits.allow("accept", "") {
			l.log.Warn("accepting a connection failed; retrying", "err", err,
				"failing_for", time.Since(f.since).Round(time.Millisecond).String(),
				"hint", "raise LimitNOFILE or lower http.max_conns if this is EMFILE")
		}
		delay = min(max(2*delay, 5*time.Millisecond), time.Second)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-l.closed:
			t.Stop()
			return nil, net.ErrClosed
		}
	}
}

// Close closes the listener and ends a back-off sleep in Accept.
func (l *listener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// acceptErr returns the accept error of the current failing run and since
// when it lasts, or nil while accepting works.
func (l *listener) acceptErr() error {
	f := l.failing.Load()
	if f == nil || time.Since(f.last) > acceptStale {
		return nil
	}
	return fmt.Errorf("accepting connections fails since %s: %w", time.Since(f.since).Round(time.Second), f.err)
}

// temporaryAcceptError reports whether accept may succeed later: the
// process or system is short of file descriptors or memory, or one
// incoming connection failed. Anything else means the listening socket
// itself is gone.
func temporaryAcceptError(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return false
	}
	switch errno {
	case syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
		syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EPROTO, syscall.EPERM,
		syscall.EAGAIN, syscall.EINTR, syscall.ETIMEDOUT:
		return true
	}
	return false
}

// refuse answers a connection over the limit with l.refusal, without
// blocking the accept loop.
func (l *listener) refuse(c net.Conn) {
	l.refused.Add(1)
	host := remoteHost(c.RemoteAddr())
	if l.limits.allow("max_conns", host) {
		l.log.Warn("refused a connection: connection limit reached", "remote", host, "max_conns", l.max,
			"refused_total", l.refused.Load())
	}
	if l.refusal == nil { // HTTPS: no plain-text answer to give
		_ = c.Close()
		return
	}
	if l.refusing.Add(1) > maxRefusing {
		l.refusing.Add(-1)
		_ = c.Close()
		return
	}
	go func() {
		defer l.refusing.Add(-1)
		// Answer after the request head arrived, as clients expect (Go's
		// client drops an answer that comes before its request).
		_ = c.SetDeadline(time.Now().Add(min(l.linger, 2*time.Second)))
		answer := l.refusal
		if readHead(c) {
			answer = l.refusedPreflight
		}
		if _, err := c.Write(answer); err != nil {
			_ = c.Close()
			return
		}
		_ = lingerClose(c, min(l.linger, 2*time.Second))
	}()
}

// readHead reads from c until the end of an HTTP request head, an error
// (the deadline) or 64 KiB, and reports whether the request is a CORS
// preflight (OPTIONS).
func readHead(c net.Conn) (options bool) {
	var buf [4096 + 3]byte
	kept := 0 // the last 3 bytes of the previous read, at buf[:kept]
	first := true
	for total := 0; total < 64<<10; {
		n, err := c.Read(buf[kept:])
		if first && n > 0 {
			options = bytes.HasPrefix(buf[:n], []byte("OPTIONS "))
			first = false
		}
		if bytes.Contains(buf[:kept+n], []byte("\r\n\r\n")) || err != nil {
			return options
		}
		total += n
		end := kept + n
		kept = copy(buf[:], buf[max(end-3, 0):end])
	}
	return options
}

// conn is a connection served by fasthttp, counted by its listener.
type conn struct {
	net.Conn
	l         *listener
	closeOnce sync.Once
	linger    atomic.Bool
	host      netip.Addr   // the client's address (idle.go: one address may not hold every slot)
	busy      atomic.Bool  // a request is being handled (idle.go)
	idleSince atomic.Int64 // when it last became idle, l.idle's monotonic stamp
}

// lingerOnClose makes Close drain what the client still sends before it
// closes: a close with unread data makes the kernel reset the connection,
// and the client may then never read the answer already written.
func (c *conn) lingerOnClose() { c.linger.Store(true) }

// Close closes the connection once, lingering if asked to.
func (c *conn) Close() error {
	err := net.ErrClosed
	c.closeOnce.Do(func() {
		if c.linger.Load() {
			err = lingerClose(c.Conn, c.l.linger)
		} else {
			err = c.Conn.Close()
		}
		c.l.idle.untrack(c)
		c.l.open.Add(-1)
	})
	return err
}

// SyscallConn gives the poll watcher the socket (see pollwatch.go).
func (c *conn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.ErrUnsupported
	}
	return sc.SyscallConn()
}

// lingerClose half-closes c (the answer is followed by FIN), reads and
// discards what the client still sends until it closes, d passes or
// drainCap bytes were read, then closes c.
func lingerClose(c net.Conn, d time.Duration) error {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, _ = io.CopyN(io.Discard, c, drainCap)
	return c.Close()
}

// remoteHost returns the IP of a TCP address, or the address's text.
func remoteHost(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.String()
	}
	if a == nil {
		return ""
	}
	return a.String()
}

// rateLog lets a log line through at most once a minute per rule and source.
type rateLog struct {
	every time.Duration
	mu    sync.Mutex
	last  map[string]time.Time
}

func newRateLog(every time.Duration) *rateLog {
	return &rateLog{every: every, last: make(map[string]time.Time)}
}

// allow reports whether a line for rule and source may be logged now.
func (r *rateLog) allow(rule, source string) bool {
	now := time.Now()
	key := rule + "\x00" + source
	r.mu.Lock()
	defer r.mu.Unlock()
	if t, ok := r.last[key]; ok && now.Sub(t) < r.every {
		return false
	}
	if len(r.last) >= 4096 {
		for k, t := range r.last {
			if now.Sub(t) >= r.every {
				delete(r.last, k)
			}
		}
		if len(r.last) >= 4096 {
			return false // a flood of sources: keep the map bounded
		}
	}
	r.last[key] = now
	return true
}

// connHost is the client address of c (IPv4-mapped addresses as IPv4);
// the zero Addr when c is not a TCP connection.
func connHost(c net.Conn) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}
