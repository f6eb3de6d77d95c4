package httpapi

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"possync/appliance"
	"possync/appliance/engine"
	"possync/appliance/update"
)

// Options configures a Server. Zero values take the defaults noted.
type Options struct {
	Addr         string // listen address (default ":8079")
	Logger       *slog.Logger
	PollHold     time.Duration // longest long-poll wait (default 50s)
	Replay       time.Duration // last=0 replay window (default 50s)
	MaxBodyBytes int           // default 8 MiB
	ReadTimeout  time.Duration // time to read a request body once its head arrived (default 30s)
	// HeaderTimeout is the time to read a request head, from its first byte
	// (or the connection's opening): a slow-loris client is cut off after
	// it. Default 10s, at most ReadTimeout.
	HeaderTimeout time.Duration
	WriteTimeout  time.Duration // default 30s
	IdleTimeout   time.Duration // default 2m
	MaxConns      int           // default 4096
	// Backup writes an online, consistent backup of the store to w; nil
	// = GET /possync/backup answers not found. Served to loopback only.
	Backup func(w io.Writer) error
	// MaxPollsPerClient caps the waiting polls of one client address; a
	// new poll beyond it answers the oldest one at once. 0 = default 32,
	// negative = no limit. It is lowered to half of MaxConns, so one
	// address never holds every connection.
	MaxPollsPerClient int
	// AllowedNetworks are the client addresses served; nil =
	// DefaultAllowedNetworks. Others get 403 before their body is read.
	AllowedNetworks []netip.Prefix
	// AllowedOrigins are the browser origins served ("https://shop.example.com");
	// empty = any (CORS "*"). A request or preflight with another Origin
	// gets 403 and no CORS grant.
	AllowedOrigins []string
	// PollWatchInterval is how often parked polls are checked for a client
	// that went away (default 1s).
	PollWatchInterval time.Duration
	// Health reports whether the server is healthy (nil = healthy); used by
	// GET /healthz. Nil means always healthy.
	Health func() error
	// Degraded reports a condition under which the server runs but cannot
	// do its job in full, e.g. the data file system is full (nil = none).
	// /healthz then answers 503 "degraded". Nil means eng.StoreHealth.
	Degraded func() error
	// Info returns extra facts for the status page (e.g. box id, data dir).
	Info func() map[string]string
	// Storage reports the data partition and the store for the status page
	// and /metrics (cmd feeds it from storage). Nil = not shown.
	Storage func() StorageInfo
	// Addresses reports the .local name and LAN addresses to type into
	// Odoo (cmd feeds it from discovery). Nil = the listener's address.
	Addresses func() Addresses
	// TLSAddr is the HTTPS listen address, served next to Addr when
	// TLSConfig is set (default ":8443").
	TLSAddr string
	// TLSConfig serves HTTPS on TLSAddr; it must provide certificates
	// (Certificates or GetCertificate, which may swap them while serving).
	// Nil = plain HTTP only.
	TLSConfig *tls.Config
	// CACert returns the PEM certificate of the local CA served at
	// GET /ca.crt, over HTTP and HTTPS (nil = no CA: 404).
	CACert func() []byte
	// OnlineWindow is how long a terminal counts as online after its last
	// poll ended (default engine.OnlineWindow; tests shorten it).
	OnlineWindow time.Duration
	// Admin is the admin endpoint (POST /possync/admin/update); nil = off.
	Admin *Admin
	// UpdateState reports the A/B slots and the last update attempt for
	// the status page and /metrics; nil = not shown.
	UpdateState func() update.State
}

// Server is the HTTP front of an engine.
type Server struct {
	eng     *engine.Engine
	opts    Options
	log     *slog.Logger
	srv     *fasthttp.Server
	ln      *listener
	tlsLn   *listener // nil without HTTPS
	watch   *pollWatch
	capMsg  string // the error of a poll answered early by the per-address cap
	limits  *rateLog
	access  *access
	started time.Time
	closed  atomic.Bool
	served  chan error    // Serve's result, read by Close
	failed  chan error    // the listener stopped for good (not by Close)
	stop    chan struct{} // closed by Close: ends the poll watcher
	metrics *serverMetrics
	qr      qrCache
}

// New returns a Server for eng. It does no I/O.
func New(eng *engine.Engine, opts Options) *Server {
	if opts.Addr == "" {
		opts.Addr = ":8079"
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opts.PollHold, 50*time.Second)
	def(&opts.Replay, 50*time.Second)
	def(&opts.ReadTimeout, 30*time.Second)
	def(&opts.WriteTimeout, 30*time.Second)
	def(&opts.IdleTimeout, 2*time.Minute)
	def(&opts.HeaderTimeout, 10*time.Second)
	opts.HeaderTimeout = min(opts.HeaderTimeout, opts.ReadTimeout)
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 8 << 20
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = 4096
	}
	if opts.MaxPollsPerClient == 0 {
		opts.MaxPollsPerClient = 32
	}
	def(&opts.PollWatchInterval, time.Second)
	if opts.Degraded == nil {
		opts.Degraded = eng.StoreHealth
	}
	if opts.TLSAddr == "" {
		opts.TLSAddr = ":8443"
	}
	if a := opts.Admin; a != nil {
		c := *a // never write the caller's
		if c.MaxBundleBytes <= 0 {
			c.MaxBundleBytes = 512 << 20
		}
		def(&c.UploadTimeout, 30*time.Minute)
		opts.Admin = &c
	}
	s := &Server{eng: eng, opts: opts, log: opts.Logger.With("component", "http"), limits: newRateLog(time.Minute),
		access: newAccess(opts.AllowedNetworks, opts.AllowedOrigins)}
	s.metrics = newServerMetrics(s)
	eng.SetObserver(s.metrics)
	perClient := max(opts.MaxPollsPerClient, 0)
	s.capMsg = fmt.Sprintf("this address has more than %d waiting long-polls (security.max_polls_per_client); the oldest was answered early", perClient)
	if half := max(opts.MaxConns/2, 1); perClient > half {
		// A small http.max_conns (16 is allowed) with the default cap of
		// 32: one address could park a poll on every connection.
		s.capMsg = fmt.Sprintf("this address has more than %d waiting long-polls (half of http.max_conns %d; security.max_polls_per_client is %d); the oldest was answered early",
			half, opts.MaxConns, perClient)
		perClient = half
	}
	s.watch = newPollWatch(perClient, opts.PollWatchInterval, s.log, s.limits)
	s.srv = &fasthttp.Server{
		Handler:      s.handleCounted,
		ErrorHandler: s.handleReadError,
		Name:         "possync",
		// The listener refuses connections beyond MaxConns itself (with a
		// JSON-RPC answer); fasthttp's own limit, a plain-text refusal,
		// must never be reached, even while a closed connection's worker
		// is still finishing.
		Concurrency:        2*opts.MaxConns + maxRefusing,
		MaxRequestBodySize: opts.MaxBodyBytes,
		ReadBufferSize:     defaultReadBufferSize,
		WriteBufferSize:    writeBufferSize,
		StreamRequestBody:  true, // oversized bodies are drained and answered 413 in readBody
		// fasthttp's ReadTimeout runs from a request's first byte (or the
		// connection's opening) until its head is read; HeaderReceived
		// then gives the body the longer ReadTimeout. A parked poll reads
		// nothing, so neither cuts it.
		ReadTimeout: opts.HeaderTimeout,
		HeaderReceived: func(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
			if c, ok := s.adminBodyConfig(h); ok {
				return c
			}
			return fasthttp.RequestConfig{ReadTimeout: opts.ReadTimeout}
		},
		// possync takes no forms: a multipart body is never parsed (and
		// never spooled to temporary files) before a handler sees it.
		DisablePreParseMultipartForm: true,
		WriteTimeout:                 opts.WriteTimeout,
		IdleTimeout:                  opts.IdleTimeout,
		ReduceMemoryUsage:            true,
		CloseOnShutdown:              true,
		Logger:                       fasthttpLogger{s.log},
	}
	return s
}

// Open binds the listener (a busy port is an error here) and serves in the
// background.
func (s *Server) Open() error {
	ln, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", s.opts.Addr, err)
	}
	var tln net.Listener
	if s.opts.TLSConfig != nil {
		if tln, err = net.Listen("tcp", s.opts.TLSAddr); err != nil {
			_ = ln.Close()
			return fmt.Errorf("listen https %s: %w", s.opts.TLSAddr, err)
		}
	}
	return s.serve(ln, tln)
}

// serve serves on ln, and HTTPS on tln unless it is nil, in the
// background.
func (s *Server) serve(ln, tln net.Listener) error {
	s.ln = newListener(ln, s.opts.MaxConns, s.opts.ReadTimeout, s.log, s.limits)
	s.ln.screen = func(c *conn) bool { return s.screen(c, nil) }
	s.started = time.Now()
	s.served = make(chan error, 2)
	s.failed = make(chan error, 2)
	s.stop = make(chan struct{})
	go s.watch.run(s.stop)
	go s.serveOn(s.ln, s.ln)
	if tln != nil {
		// The TLS layer sits on top of the counting listener, so the
		// connection limit, accept retries and lingering close cover
		// HTTPS too; the poll watcher reaches the TCP conn via NetConn.
		s.tlsLn = newListener(tln, s.opts.MaxConns, s.opts.ReadTimeout, s.log, s.limits)
		s.tlsLn.refusal = nil // a plain-text answer means nothing to a TLS client
		tc := tlsConfig(s.opts.TLSConfig)
		s.tlsLn.screen = func(c *conn) bool { return s.screen(c, tc) }
		go s.serveOn(tls.NewListener(s.tlsLn, tc), s.tlsLn)
	}
	return nil
}

// serveOn runs fasthttp on ln (whose base is the counting listener
// base) and reports its end on served, and on failed unless Close asked.
func (s *Server) serveOn(ln net.Listener, base *listener) {
	err := s.srv.Serve(ln)
	if !s.closed.Load() {
		// fasthttp returns nil when it takes the error for a closed
		// listener; either way nobody asked it to stop.
		why := err
		if why == nil {
			why = errListenerGone
		}
		s.failed <- fmt.Errorf("http listener %s stopped: %w", base.Addr(), why)
	}
	s.served <- err
}

// errListenerGone stands for the nil fasthttp returns when its listener
// was closed by someone else than Close.
var errListenerGone = errors.New("listener closed")

// Failed delivers an error when the listener has stopped for good without
// Close being called: the process should exit so its supervisor restarts
// it. Valid after Open.
func (s *Server) Failed() <-chan error { return s.failed }

// Addr returns the bound address (after Open).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// TLSAddr returns the bound HTTPS address, or nil without HTTPS (after
// Open).
func (s *Server) TLSAddr() net.Addr {
	if s.tlsLn == nil {
		return nil
	}
	return s.tlsLn.Addr()
}

// Port returns the bound TCP port (after Open).
func (s *Server) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// Close stops accepting, wakes waiting polls, and waits (bounded by ctx) for
// in-flight requests. Safe to call more than once.
func (s *Server) Close(ctx context.Context) error {
	if s.closed.Swap(true) || s.ln == nil {
		return nil
	}
	close(s.stop)
	s.eng.StopPolls()
	err := s.srv.ShutdownWithContext(ctx)
	// A Serve goroutine that had not yet registered its listener with
	// fasthttp when Shutdown ran ends on its closed listener.
	_ = s.ln.Close()
	n := 1
	if s.tlsLn != nil {
		_ = s.tlsLn.Close()
		n = 2
	}
	for range n {
		if serr := <-s.served; serr != nil && !errors.Is(serr, net.ErrClosed) && err == nil {
			err = serr
		}
	}
	if err != nil {
		return fmt.Errorf("shutdown http: %w", err)
	}
	return nil
}

type fasthttpLogger struct{ l *slog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	f.l.Debug(fmt.Sprintf(format, args...))
}

// handleReadError answers requests fasthttp could not read: a body over the
// limit gets 413 with a JSON-RPC error saying so; others get 400.
func (s *Server) handleReadError(ctx *fasthttp.RequestCtx, err error) {
	setCORS(ctx)
	status := fasthttp.StatusBadRequest
	msg := "request could not be read: " + err.Error()
	if errors.Is(err, fasthttp.ErrBodyTooLarge) {
		status = fasthttp.StatusRequestEntityTooLarge
		msg = fmt.Sprintf("request body is larger than the limit of %d bytes (http.max_body_bytes)", s.opts.MaxBodyBytes)
	}
	var small *fasthttp.ErrSmallBuffer
	if errors.As(err, &small) {
		status = fasthttp.StatusRequestHeaderFieldsTooLarge
		msg = fmt.Sprintf("request headers are larger than the limit of %d bytes", s.srv.ReadBufferSize)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// A slow-loris client, or a network that stalls mid-request.
		status = fasthttp.StatusRequestTimeout
		msg = fmt.Sprintf("request body did not arrive within http.read_timeout (%v)", s.opts.ReadTimeout)
		if strings.Contains(err.Error(), "request headers") {
			msg = fmt.Sprintf("request headers did not arrive within http.header_timeout (%v) of their first byte", s.opts.HeaderTimeout)
		}
	}
	host := remoteHost(ctx.RemoteAddr())
	if s.limits.allow("read_error", host) {
		s.log.Warn("rejected request", "remote", host, "status", status, "err", msg)
	}
	rule := ruleUnread
	if status == fasthttp.StatusRequestEntityTooLarge {
		rule = ruleTooLarge
	}
	s.refused(ctx, rule, msg)
	s.metrics.count(routeOther, outcomeRefused)
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(appendRPCError(nil, nil, appliance.EINVALID, msg))
	ctx.SetConnectionClose()
	// The rest of the request is unread: closing now would reset the
	// connection and the client might never see this answer. Drain it
	// (bounded by drainCap and the read timeout) like the 413 path does.
	if c, ok := ctx.Conn().(*conn); ok {
		c.lingerOnClose()
	}
}

// defaultReadBufferSize is fasthttp's default Server.ReadBufferSize: the
// largest request header read.
const defaultReadBufferSize = 4096

// writeBufferSize is the response write buffer. A poll answer carrying one
// order (2–8 KiB) plus its head fits, so it leaves in one write(2) instead
// of two (fasthttp's default of 4 KiB splits it). With ReduceMemoryUsage
// fasthttp takes the buffer from a pool per response and returns it, so an
// idle or waiting connection holds none.
const writeBufferSize = 16 << 10

// reqErrKey is the user value under which writeError leaves the error code
// of the request for handleCounted to count (set on error paths only).
const reqErrKey = "possync.err"

// handleCounted is the fasthttp handler: it routes through handle, then counts the
// request by route and outcome for /metrics and records refusals as
// warnings for the status page.
func (s *Server) handleCounted(ctx *fasthttp.RequestCtx) {
	if c, ok := servedConn(ctx.Conn()); ok {
		c.begin()
		defer c.end()
	}
	s.handle(ctx)
	route := routeOf(ctx)
	outcome := outcomeOK
	code, _ := ctx.UserValue(reqErrKey).(string)
	switch status := ctx.Response.StatusCode(); {
	case status == fasthttp.StatusRequestEntityTooLarge:
		outcome = outcomeRefused // counted and recorded by tooLarge
	case status == fasthttp.StatusMethodNotAllowed:
		outcome = outcomeRefused
		s.metrics.refuse(ruleMethod)
	case code == appliance.ENOTFOUND:
		outcome = outcomeRefused
		s.metrics.refuse(ruleNoRoute)
	case code == appliance.EINVALID:
		outcome = outcomeRefused
		s.metrics.refuse(ruleInvalid)
	case ctx.UserValue(ruleKey) != nil:
		outcome = outcomeRefused // counted and recorded by forbid or tokenOK
	case route == routeAdminUpdate && status >= 500 && status != fasthttp.StatusInsufficientStorage && status != fasthttp.StatusNotImplemented:
		outcome = outcomeFailed
	case route == routeAdminUpdate && status >= 400:
		outcome = outcomeRefused
	case code == appliance.EFORBIDDEN:
		outcome = outcomeRefused
		s.metrics.refuse(ruleDatabase)
	case code == appliance.ELIMIT:
		outcome = outcomeRefused
		s.metrics.refuse(ruleLimit)
	case code != "":
		outcome = outcomeFailed
	}
	s.metrics.count(route, outcome)
}

// routeOf names the route of a request for possync_http_requests_total.
func routeOf(ctx *fasthttp.RequestCtx) int {
	if ctx.IsOptions() {
		return routePreflight
	}
	switch string(ctx.Path()) {
	case pathUpdate:
		return routeUpdate
	case pathPing:
		return routePing
	case pathPoll:
		return routePoll
	case "/", "/index.html":
		return routeStatusPage
	case pathStatusJSON:
		return routeStatusJSON
	case pathMetrics:
		return routeMetrics
	case "/healthz":
		return routeHealth
	case pathAdminUpdate:
		return routeAdminUpdate
	}
	return routeOther
}

// noteError is called by writeError: it counts the JSON-RPC error by code,
// leaves the code for handleCounted and records refused requests as warnings.
func (s *Server) noteError(ctx *fasthttp.RequestCtx, code, msg string) {
	ctx.SetUserValue(reqErrKey, code)
	s.metrics.rpcError(code)
	switch code {
	case appliance.EINVALID, appliance.ENOTFOUND, appliance.EFORBIDDEN, appliance.ELIMIT:
		s.eng.Warn(engine.WarnRefused, remoteHost(ctx.RemoteAddr()), string(ctx.Method())+" "+string(ctx.Path())+": "+msg)
	}
}

// refused counts a request refused before routing (rule) and records it as
// a warning.
func (s *Server) refused(ctx *fasthttp.RequestCtx, rule, msg string) {
	s.metrics.refuse(rule)
	s.eng.Warn(engine.WarnRefused, remoteHost(ctx.RemoteAddr()), msg)
}
