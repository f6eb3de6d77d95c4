// Package apptest holds test helpers that start real possync components:
// a server on 127.0.0.1:0 backed by Badger in a temp dir, and simulated
// Odoo 12 POS terminals that drive it over real HTTP. Import it only from
// _test.go files.
package apptest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"possync/appliance/engine"
	"possync/appliance/httpapi"
	"possync/appliance/tlscert"
	"possync/appliance/update"
	"possync/storage"
)

// Options configures MustOpenServer. Zero values take the defaults noted.
type Options struct {
	Dir          string        // data dir; "" = tb.TempDir()
	PollHold     time.Duration // long-poll hold; 0 = 2s (tests use short holds)
	Replay       time.Duration // last=0 replay window; 0 = 50s
	MaxBodyBytes int           // 0 = default (8 MiB)
	Logger       *slog.Logger  // nil = discard
	// Now is the engine's clock (stored broadcast and order times, ages);
	// nil = time.Now. A test sets it to play a box whose wall clock is off.
	Now func() time.Time
	// MaxConns and MaxPollsPerClient are passed to httpapi.Options
	// (0 = its defaults: 4096 and 32).
	MaxConns          int
	MaxPollsPerClient int
	OnlineWindow      time.Duration // terminal online window on the status page; 0 = engine.OnlineWindow
	// TLS serves HTTPS too, on another loopback port, with a local CA
	// (tlscert) kept in Dir/tls and a certificate for 127.0.0.1 and
	// localhost.
	TLS bool
	// Host is the IP both listeners bind to ("" = 127.0.0.1); with TLS it
	// joins the certificate's addresses.
	Host string
	// Access rules and timeouts passed to httpapi.Options (zero = its
	// defaults: private networks, any origin, 10s header and 30s read
	// timeouts) and engine.Options (any database, default state bounds).
	AllowedNetworks  []netip.Prefix
	AllowedOrigins   []string
	AllowedDatabases []string
	HeaderTimeout    time.Duration
	ReadTimeout      time.Duration
	MaxDatabases     int
	MaxMultiSessions int
	MaxTerminals     int
	// Addr is the plain HTTP listen address; "" = Host:0.
	Addr string
	// Admin and UpdateState are passed to httpapi.Options (nil = off).
	Admin       *httpapi.Admin
	UpdateState func() update.State
}

// Server is a running possync server: real Badger on disk, real fasthttp
// on a loopback port.
type Server struct {
	URL string // e.g. "http://127.0.0.1:43567" (no trailing slash)
	// TLSURL is "https://127.0.0.1:<port>" with Options.TLS, else "".
	TLSURL string
	// CA is the local CA with Options.TLS (its Cert trusted by RootCAs).
	CA      *tlscert.CA
	RootCAs *x509.CertPool
	// Cert re-issues the HTTPS certificate (tests of the hot swap).
	Cert   *tlscert.Auto
	Dir    string
	Engine *engine.Engine

	opts   Options
	store  *storage.DB
	http   *httpapi.Server
	closed bool
}

// MustOpenServer starts a server; tb.Cleanup closes it.
func MustOpenServer(tb testing.TB, opts Options) *Server {
	tb.Helper()
	if opts.Dir == "" {
		opts.Dir = tb.TempDir()
	}
	if opts.PollHold == 0 {
		opts.PollHold = 2 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s, err := open(opts)
	if err != nil {
		tb.Fatalf("open test server: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

func open(opts Options) (*Server, error) {
	store, err := storage.Open(opts.Dir, storage.Options{Logger: opts.Logger})
	if err != nil {
		return nil, err
	}
	eng := engine.New(store, engine.Options{Logger: opts.Logger, PurgeInterval: -1, Now: opts.Now,
		AllowedDatabases: opts.AllowedDatabases, MaxDatabases: opts.MaxDatabases,
		MaxMultiSessions: opts.MaxMultiSessions, MaxTerminals: opts.MaxTerminals})
	if err := eng.Open(context.Background()); err != nil {
		store.Close()
		return nil, err
	}
	host := opts.Host
	if host == "" {
		host = "127.0.0.1"
	}
	addr := opts.Addr
	if addr == "" {
		addr = net.JoinHostPort(host, "0")
	}
	var auto *tlscert.Auto
	var tlsCfg *tls.Config
	if opts.TLS {
		ips := []net.IP{net.IPv4(127, 0, 0, 1)}
		if ip := net.ParseIP(opts.Host); ip != nil {
			ips = append(ips, ip)
		}
		auto, err = tlscert.NewAuto(tlscert.Dir(opts.Dir), "apptest", []string{"localhost"}, ips)
		if err != nil {
			eng.Close()
			store.Close()
			return nil, err
		}
		tlsCfg = &tls.Config{GetCertificate: auto.GetCertificate}
	}
	srv := httpapi.New(eng, httpapi.Options{
		Addr:      addr,
		TLSAddr:   net.JoinHostPort(host, "0"),
		TLSConfig: tlsCfg,
		CACert: func() []byte {
			if auto == nil {
				return nil
			}
			return auto.CA().PEM
		},
		AllowedNetworks:   opts.AllowedNetworks,
		AllowedOrigins:    opts.AllowedOrigins,
		HeaderTimeout:     opts.HeaderTimeout,
		ReadTimeout:       opts.ReadTimeout,
		Logger:            opts.Logger,
		PollHold:          opts.PollHold,
		Replay:            opts.Replay,
		MaxBodyBytes:      opts.MaxBodyBytes,
		MaxConns:          opts.MaxConns,
		MaxPollsPerClient: opts.MaxPollsPerClient,
		OnlineWindow:      opts.OnlineWindow,
		Admin:             opts.Admin,
		UpdateState:       opts.UpdateState,
		Storage: func() httpapi.StorageInfo {
			st, err := store.Stats()
			if err != nil {
				return httpapi.StorageInfo{}
			}
			return httpapi.StorageInfo{FreeBytes: st.FreeBytes, TotalBytes: st.TotalBytes,
				StoreBytes: st.DirBytes, GCRuns: st.GCRuns, GCRewrites: st.GCRewrites,
				Transactions: st.Transactions, Commits: st.Commits}
		},
	})
	if err := srv.Open(); err != nil {
		eng.Close()
		store.Close()
		return nil, err
	}
	s := &Server{URL: fmt.Sprintf("http://%s", srv.Addr()), Dir: opts.Dir, Engine: eng, opts: opts, store: store, http: srv}
	if auto != nil {
		s.TLSURL = fmt.Sprintf("https://%s", srv.TLSAddr())
		s.CA, s.Cert = auto.CA(), auto
		s.RootCAs = x509.NewCertPool()
		s.RootCAs.AddCert(s.CA.Cert)
	}
	return s, nil
}

// Close stops the server cleanly (HTTP, engine, store). Idempotent.
func (s *Server) Close() {
	if s.closed {
		return
	}
	s.closed = true
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.http.Close(ctx)
	_ = s.Engine.Close()
	_ = s.store.Close()
}

// Restart closes s and opens a new server on the same data dir (on a new
// port). The new server is closed by tb.Cleanup.
func (s *Server) Restart(tb testing.TB) *Server {
	tb.Helper()
	s.Close()
	n, err := open(s.opts)
	if err != nil {
		tb.Fatalf("restart test server: %v", err)
	}
	tb.Cleanup(n.Close)
	return n
}
