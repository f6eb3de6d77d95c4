// Command possync-bench is the load generator of possync: it simulates
// Odoo 12 POS terminals (start-up sync_all, long-polls with `last`,
// message_ID checks) against a possync server and measures acknowledgement
// and fan-out latency, deliveries, gaps, errors and the server's RSS and
// CPU; optionally the same load against nginx + nchan in the same run.
//
//	possync-bench -spawn -pos 50 -rate 50 -duration 20s -peer nchan
//	possync-bench -spawn -sessions 20 -pos 200 -rate 0 -writers 2 -duration 10s
//	possync-bench -spawn -idle 1000,4000 -sessions 400 -peer nchan
//	possync-bench -url http://127.0.0.1:8079 -pos 20 -rate 20
//
// See BENCHMARKS.md at the repository root.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if ctx.Err() != nil && errors.Is(err, context.Canceled) { // before stop(), which cancels ctx
		err = errors.New("interrupted by a signal: stopped before the run finished, no figures (spawned servers stopped)")
	}
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "possync-bench:", err)
		os.Exit(1)
	}
}

type options struct {
	url       string
	spawn     bool
	serverBin string
	pos       int
	sessions  int
	rate      float64
	writers   int
	duration  time.Duration
	peer      string
	idle      []int
	db        string
	progress  time.Duration
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("possync-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.url, "url", "", "possync server to load (http://host:port); or -spawn")
	fs.BoolVar(&o.spawn, "spawn", false, "build possync from this module and start it on 127.0.0.1 with a temporary data dir (SyncWrites on)")
	fs.StringVar(&o.serverBin, "server-bin", "", "with -spawn: use this possync binary instead of building one")
	fs.IntVar(&o.pos, "pos", 50, "terminals (POS configs), all long-polling")
	fs.IntVar(&o.sessions, "sessions", 1, "multi-sessions the terminals are spread over (each needs at least 2 terminals)")
	fs.Float64Var(&o.rate, "rate", 50, "update_order per second over all terminals; 0 = throughput mode (see -writers)")
	fs.IntVar(&o.writers, "writers", 2, "throughput mode (-rate 0): terminals per multi-session sending back to back, each its next update as soon as the last is acknowledged")
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "how long updates are sent")
	fs.StringVar(&o.peer, "peer", "", `run the same load against a peer in the same run: "nchan" (nginx + nchan; installed with apt-get when missing)`)
	idle := fs.String("idle", "", "idle-cost mode: comma-separated terminal counts (e.g. 1000,4000), each with one waiting poll; reports RSS per waiting terminal")
	fs.StringVar(&o.db, "db", "", `Odoo database name the terminals use ("" = a new one per run, so no earlier notification is replayed)`)
	fs.DurationVar(&o.progress, "progress", time.Second, "progress line interval on stderr (0 = none)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.spawn == (o.url != "") {
		return o, errors.New("give exactly one of -spawn and -url")
	}
	if o.url != "" {
		// The terminals post to possync's own routes on the URL's host
		// (as Odoo's Sync Server field, no path) over plain HTTP.
		u, err := url.Parse(o.url)
		if err != nil || u.Scheme != "http" || u.Host == "" || u.User != nil ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return o, fmt.Errorf("-url %q: want http://host:port (plain HTTP, no path, query or user; -spawn starts a server)", o.url)
		}
	}
	if o.serverBin != "" && !o.spawn {
		return o, errors.New("-server-bin goes with -spawn")
	}
	if o.peer != "" && o.peer != "nchan" {
		return o, fmt.Errorf("-peer %q: only nchan is known", o.peer)
	}
	for f := range strings.SplitSeq(*idle, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || (len(o.idle) > 0 && n <= o.idle[len(o.idle)-1]) {
			return o, fmt.Errorf("-idle %q: want increasing positive counts, e.g. 1000,4000", *idle)
		}
		o.idle = append(o.idle, n)
	}
	if len(o.idle) == 0 {
		switch {
		case o.sessions < 1 || o.pos < 2*o.sessions:
			return o, fmt.Errorf("-pos %d -sessions %d: every multi-session needs at least 2 terminals", o.pos, o.sessions)
		case math.IsNaN(o.rate) || o.rate < 0 || o.rate > 100000 || (o.rate > 0 && o.rate < 0.01):
			return o, fmt.Errorf("-rate %v: want 0 (throughput mode) or 0.01 to 100000 updates per second", o.rate)
		case o.rate == 0 && o.writers < 1:
			return o, errors.New("-writers must be ≥ 1")
		case o.duration <= 0:
			return o, errors.New("-duration must be > 0")
		}
	}
	if o.db == "" {
		o.db = fmt.Sprintf("bench%d", time.Now().UnixNano()/1e6%1e9)
	}
	return o, nil
}

// run is the testable body of main: it writes progress to stderr and the
// table plus, as the last line, the JSON summary to stdout.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	removeStaleDirs(stderr)
	nofile := raiseFileLimit()
	maxTerms := o.pos
	if len(o.idle) > 0 {
		maxTerms = o.idle[len(o.idle)-1]
	}
	if need := uint64(2*maxTerms + 256); nofile < need {
		fmt.Fprintf(stderr, "warning: open-file limit %d is below the %d this run may need\n", nofile, need)
	}

	// possync: spawned or given.
	base, pids := o.url, []int(nil)
	var srv *spawned
	stopSrv := func() {
		if srv != nil {
			srv.stop()
			srv = nil
		}
	}
	defer stopSrv()
	if o.spawn {
		if srv, err = spawnPossync(ctx, o.serverBin, maxTerms, stderr); err != nil {
			return err
		}
		base, pids = srv.url, []int{srv.pid()}
		fmt.Fprintf(stderr, "possync spawned at %s (pid %d, data in %s)\n", base, srv.pid(), srv.dir)
	} else if pid := localPID(o.url); pid > 0 {
		pids = []int{pid}
	} else {
		fmt.Fprintln(stderr, "server process not found on this machine: no RSS/CPU figures")
	}
	ps, err := newPossyncTarget(strings.TrimRight(base, "/"), o.db, pids)
	if err != nil {
		return err
	}

	if len(o.idle) > 0 {
		return runIdle(ctx, o, ps, stopSrv, stdout, stderr)
	}

	p := loadParams{pos: o.pos, sessions: o.sessions, rate: o.rate, writers: o.writers, duration: o.duration,
		drain: 10 * time.Second, progress: o.progress}
	mainRes, err := runLoad(ctx, ps, p, stderr)
	if err != nil {
		return err
	}
	stopSrv() // the peer runs on a machine without possync busy
	var peerRes *result
	if o.peer == "nchan" {
		ng, err := startPeer(ctx, stderr)
		if err != nil {
			return err
		}
		r, err := runLoad(ctx, newNchanTarget(ng), p, stderr)
		ng.stop()
		if err != nil {
			return err
		}
		peerRes = &r
	}
	if err := report(stdout, mainRes, peerRes); err != nil {
		return err
	}
	errs := []error{check(mainRes)}
	if peerRes != nil {
		errs = append(errs, check(*peerRes))
	}
	return errors.Join(errs...)
}

// startPeer installs (if needed) and starts nginx + nchan.
func startPeer(ctx context.Context, stderr io.Writer) (*nginxProc, error) {
	nginx, module, err := ensureNchan(ctx, stderr)
	if err != nil {
		return nil, err
	}
	ng, err := startNginx(ctx, nginx, module)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(stderr, "nginx + nchan started at %s (pid %d)\n", ng.base(), ng.cmd.Process.Pid)
	return ng, nil
}

// localPID returns the pid of the process listening on u's port when u
// names a loopback address, else 0.
func localPID(u string) int {
	pu, err := url.Parse(u)
	if err != nil {
		return 0
	}
	host, port := pu.Hostname(), pu.Port()
	if port == "" {
		port = "80"
	}
	ip := net.ParseIP(host)
	if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return 0
	}
	n, _ := strconv.Atoi(port)
	return listenerPID(n)
}
