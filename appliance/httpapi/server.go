package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"possync/appliance"
	"possync/appliance/engine"
)

// Options configures a Server. Zero values take the defaults noted.
type Options struct {
	Addr         string // listen address (default ":8079")
	Logger       *slog.Logger
	PollHold     time.Duration // longest long-poll wait (default 50s)
	Replay       time.Duration // last=0 replay window (default 50s)
	MaxBodyBytes int           // default 8 MiB
	ReadTimeout  time.Duration // default 30s
	WriteTimeout time.Duration // default 30s
	IdleTimeout  time.Duration // default 2m
	MaxConns     int           // default 4096
	// Health reports whether the server is healthy (nil = healthy); used by
	// GET /healthz. Nil means always healthy.
	Health func() error
	// Info returns extra facts for the status page (e.g. box id, data dir).
	Info func() map[string]string
}

// Server is the HTTP front of an engine.
type Server struct {
	eng     *engine.Engine
	opts    Options
	log     *slog.Logger
	srv     *fasthttp.Server
	ln      net.Listener
	started time.Time
	closed  atomic.Bool
	served  chan error
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
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 8 << 20
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = 4096
	}
	s := &Server{eng: eng, opts: opts, log: opts.Logger.With("component", "http")}
	s.srv = &fasthttp.Server{
		Handler:            s.handle,
		ErrorHandler:       s.handleReadError,
		Name:               "possync",
		Concurrency:        opts.MaxConns,
		MaxRequestBodySize: opts.MaxBodyBytes,
		StreamRequestBody:  true, // oversized bodies are drained and answered 413 in readBody
		ReadTimeout:        opts.ReadTimeout,
		WriteTimeout:       opts.WriteTimeout,
		IdleTimeout:        opts.IdleTimeout,
		ReduceMemoryUsage:  true,
		CloseOnShutdown:    true,
		Logger:             fasthttpLogger{s.log},
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
	s.ln = ln
	s.started = time.Now()
	s.served = make(chan error, 1)
	go func() { s.served <- s.srv.Serve(ln) }()
	return nil
}

// Addr returns the bound address (after Open).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Port returns the bound TCP port (after Open).
func (s *Server) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// Close stops accepting, wakes waiting polls, and waits (bounded by ctx) for
// in-flight requests. Safe to call more than once.
func (s *Server) Close(ctx context.Context) error {
	if s.closed.Swap(true) || s.ln == nil {
		return nil
	}
	s.eng.StopPolls()
	err := s.srv.ShutdownWithContext(ctx)
	if serr := <-s.served; serr != nil && !errors.Is(serr, net.ErrClosed) && err == nil {
		err = serr
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
	s.log.Warn("rejected request", "remote", ctx.RemoteAddr().String(), "status", status, "err", msg)
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(appendRPCError(nil, nil, appliance.EINVALID, msg))
	ctx.SetConnectionClose()
}
