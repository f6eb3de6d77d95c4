package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"possync/appliance"
	"possync/appliance/config"
	"possync/appliance/engine"
	"possync/appliance/httpapi"
	"possync/storage"
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "configuration file (TOML); without it the built-in defaults are used")
	listen := fs.String("listen", "", "listen address, e.g. :8079 (overrides http.listen)")
	dataDir := fs.String("data", "", "data directory (overrides storage.dir)")
	tlsListen := fs.String("tls-listen", "", "HTTPS listen address, e.g. :8443; -tls-listen= turns HTTPS off (overrides tls.listen)")
	mdns := fs.Bool("mdns", true, "announce the box over mDNS (overrides discovery.enabled)")
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2}
	}
	if fs.NArg() > 0 {
		return &exitError{code: 2, err: fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))}
	}

	cfg := config.Default()
	if *configPath != "" {
		var err error
		if cfg, err = config.Load(*configPath); err != nil {
			return &exitError{code: 1, err: err}
		}
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "listen":
			cfg.HTTP.Listen = *listen
		case "data":
			cfg.Storage.Dir = *dataDir
		case "tls-listen":
			cfg.TLS.Listen = *tlsListen
		case "mdns":
			cfg.Discovery.Enabled = *mdns
		}
	})
	if err := cfg.Validate(); err != nil {
		return &exitError{code: 1, err: fmt.Errorf("invalid settings: %w", err)}
	}
	logger := newLogger(cfg.Log, stderr)
	return serve(ctx, cfg, logger)
}

// serve runs the Sync Server until ctx is done. Start-up order: store,
// engine, listener, READY; shutdown order: mDNS goodbye, HTTP (waking
// waiting polls), engine, store.
func serve(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
	setMemoryLimit(cfg.Bus.MaxRetainedMiB<<20, logger)
	dir, err := filepath.Abs(cfg.Storage.Dir)
	if err != nil {
		return fmt.Errorf("data dir %s: %w", cfg.Storage.Dir, err)
	}
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return storeExit(&storage.OpenError{Dir: dir, File: dir, Problem: storage.ProblemNotAStore, Err: errors.New("it is a file, not a directory")})
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	store, err := storage.Open(dir, storage.Options{Logger: logger, CacheMiB: cfg.Storage.CacheMiB, ReserveBytes: uint64(cfg.Storage.ReserveMiB) << 20, GCInterval: cfg.Storage.GCInterval.D()})
	if err != nil {
		logger.Error("store cannot be opened", "err", err)
		return storeExit(err)
	}
	defer func() {
		if err := store.Close(); err != nil {
			logger.Error("close store", "err", err)
		}
	}()

	eng := engine.New(store, engine.Options{
		Logger:              logger,
		BusRetention:        cfg.Bus.Retention.D(),
		BusMaxRetainedBytes: cfg.Bus.MaxRetainedMiB << 20,
		OrderRetention:      cfg.Orders.Retention.D(),
		PurgeInterval:       cfg.Orders.PurgeInterval.D(),
		// security.*: who is served, how much state is kept.
		AllowedDatabases: cfg.Security.AllowedDatabases,
		MaxDatabases:     cfg.Security.MaxDatabases,
		MaxMultiSessions: cfg.Security.MaxMultiSessions,
		MaxTerminals:     cfg.Security.MaxTerminals,
	})
	if err := eng.Open(ctx); err != nil {
		return err
	}
	defer eng.Close()

	addrs := &boxAddresses{listen: cfg.HTTP.Listen, interfaces: cfg.Discovery.Interfaces}
	btls, err := openTLS(cfg, dir, addrs.announcedHost, logger)
	if err != nil {
		return err
	}
	admin, err := adminEndpoint(cfg, logger)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	format := strconv.Itoa(store.Format()) // docs/the-box.md "Versions of the data"
	srv := httpapi.New(eng, httpapi.Options{
		Addr:         cfg.HTTP.Listen,
		Logger:       logger,
		PollHold:     cfg.HTTP.PollHold.D(),
		Replay:       cfg.Bus.Replay.D(),
		MaxBodyBytes: cfg.HTTP.MaxBodyBytes,
		ReadTimeout:  cfg.HTTP.ReadTimeout.D(),
		WriteTimeout: cfg.HTTP.WriteTimeout.D(),
		IdleTimeout:  cfg.HTTP.IdleTimeout.D(),
		MaxConns:     cfg.HTTP.MaxConns,
		// config: 0 = no limit; httpapi: 0 = default, <0 = no limit.
		MaxPollsPerClient: cmp.Or(cfg.Security.MaxPollsPerClient, -1),
		HeaderTimeout:     cfg.HTTP.HeaderTimeout.D(),
		AllowedNetworks:   cfg.Security.ParsedNetworks(),
		AllowedOrigins:    cfg.Security.AllowedOrigins,
		Health:            func() error { return eng.Health(5 * time.Second) },
		Info:              func() map[string]string { return map[string]string{"Data directory": dir, "Data format": format} },
		Storage:           storageInfo(store, logger),
		Backup:            store.Backup,
		Addresses:         addrs.get,
		TLSAddr:           cfg.TLS.Listen,
		TLSConfig:         btls.tlsConfig(),
		CACert:            btls.caPEM,
		Admin:             admin,
		UpdateState:       updateState(cfg.Update.Dir),
	})
	if err := srv.Open(); err != nil {
		return err
	}
	go btls.run(ctx)
	logger.Info("possync serving", "listen", srv.Addr().String(), "https", addrString(srv.TLSAddr()), "data", dir, "version", appliance.Version, "commit", appliance.BuildCommit())

	disc := cfg.Discovery
	if disc.Enabled && loopbackOnly(srv.Addr()) {
		// Nobody on the LAN can reach a loopback listener: announcing it
		// would only send terminals to an address that refuses them.
		logger.Info("mDNS announcement off: listening on loopback only", "listen", srv.Addr().String())
		disc.Enabled = false
	}
	stopAdvertiser, adv := startAdvertiser(ctx, disc, srv.Port(), dir, logger)
	addrs.setAdvertiser(adv)
	if _, err := sdNotify("READY=1\nSTATUS=serving on " + srv.Addr().String()); err != nil {
		logger.Warn("sd_notify READY", "err", err)
	}
	warnFileLimit(cfg.HTTP.MaxConns, logger)
	// The watchdog covers the engine and the HTTP listener: a self-request
	// over a new connection fails while accepting fails (EMFILE…) or the
	// accept loop is stuck, so systemd restarts a server that cannot serve.
	go runWatchdog(ctx, func() error {
		if err := eng.Health(5 * time.Second); err != nil {
			return err
		}
		return srv.Probe(5 * time.Second)
	}, logger)

	var failed error
	select {
	case <-ctx.Done():
		logger.Info("shutting down")
	case failed = <-srv.Failed():
		// Nothing can reach the server any more: exit non-zero so the
		// supervisor restarts it, instead of living on unreachable.
		logger.Error("shutting down: HTTP stopped", "err", failed)
	}
	_, _ = sdNotify("STOPPING=1")
	stopAdvertiser()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Close(sctx); err != nil && !errors.Is(err, context.Canceled) {
		logger.Warn("http shutdown", "err", err)
	}
	return failed
}

// loopbackOnly reports whether addr is a loopback address (127.0.0.0/8, ::1).
func loopbackOnly(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP != nil && tcp.IP.IsLoopback()
}

// newLogger builds the process logger. LOG_LEVEL in the environment
// overrides log.level.
func newLogger(c config.Log, w io.Writer) *slog.Logger {
	level := c.Level
	if env := os.Getenv("LOG_LEVEL"); env != "" {
		level = env
	}
	var lv slog.Level
	switch strings.ToLower(level) {
	case "debug":
		lv = slog.LevelDebug
	case "warn", "warning":
		lv = slog.LevelWarn
	case "error":
		lv = slog.LevelError
	default:
		lv = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lv}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
