package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"
)

// idlePoint is the RSS with n waiting terminals.
type idlePoint struct {
	Terminals      int     `json:"terminals"`
	RSSMB          float64 `json:"rss_mb"`
	KiBPerTerminal float64 `json:"kib_per_terminal"`
}

type idleSide struct {
	Name      string      `json:"name"`
	BaseRSSMB float64     `json:"base_rss_mb"`
	Points    []idlePoint `json:"points"`
	Errors    int64       `json:"errors"`
}

// settledRSS waits a moment and returns the median of five RSS readings
// 200 ms apart, KiB.
func settledRSS(pids []int) int64 {
	time.Sleep(2 * time.Second)
	var r []int64
	for range 5 {
		r = append(r, rssOf(pids))
		time.Sleep(200 * time.Millisecond)
	}
	slices.Sort(r)
	return r[len(r)/2]
}

// runIdle measures the RSS cost of a waiting terminal: the server's RSS
// with no terminal, then with each count of o.idle terminals that did
// their start-up sync_all (possync) and each keep one long-poll waiting on
// one connection; growth / terminals = KiB per waiting terminal.
func runIdle(ctx context.Context, o options, ps *possyncTarget, stopSrv func(), stdout, stderr io.Writer) error {
	if len(ps.pids) == 0 {
		return fmt.Errorf("-idle needs the server's process: use -spawn or a local -url")
	}
	maxN := o.idle[len(o.idle)-1]
	sessions := max(1, min(o.sessions, maxN))
	l := newLayout(maxN, sessions)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	measure := func(name string, pids []int, add func(from, to int) error, rec *recorder) (idleSide, error) {
		side := idleSide{Name: name}
		base := settledRSS(pids)
		side.BaseRSSMB = round2(float64(base) / 1024)
		from := 0
		for _, n := range o.idle {
			if err := add(from, n); err != nil {
				return side, fmt.Errorf("%s: %d waiting terminals: %w", name, n, err)
			}
			from = n
			rss := settledRSS(pids)
			pt := idlePoint{Terminals: n, RSSMB: round2(float64(rss) / 1024), KiBPerTerminal: round2(float64(rss-base) / float64(n))}
			side.Points = append(side.Points, pt)
			fmt.Fprintf(stderr, "%-7s %5d waiting terminals: RSS %.1f MiB (%.1f MiB with none): %.2f KiB per waiting terminal\n",
				name, n, pt.RSSMB, side.BaseRSSMB, pt.KiBPerTerminal)
		}
		side.Errors = rec.snapshot().errors
		return side, nil
	}

	// possync: sync_all, then one poll each on the same connection.
	rec := newRecorder()
	ps.terms = make([]*psTerm, maxN)
	initial, err := ps.waitingPolls()
	if err != nil {
		return err
	}
	res := []idleSide{}
	side, err := measure("possync", ps.pids, func(from, to int) error {
		for i := from; i < to; i++ {
			ps.terms[i] = ps.newTerm(&l.terms[i], 1)
		}
		if err := parallel(ctx, to-from, 64, func(k int) error { return ps.terms[from+k].syncAll(ps.db) }); err != nil {
			return err
		}
		for i := from; i < to; i++ {
			go ps.terms[i].pollLoop(ctx, rec)
		}
		return ps.waitPolls(ctx, initial+to)
	}, rec)
	if err != nil {
		return err
	}
	res = append(res, side)
	stopSrv()

	if o.peer == "nchan" {
		ng, err := startPeer(ctx, stderr)
		if err != nil {
			return err
		}
		defer ng.stop()
		nc := newNchanTarget(ng)
		nc.terms = make([]*ncTerm, maxN)
		nrec := newRecorder()
		side, err := measure("nchan", nc.procs(), func(from, to int) error {
			for i := from; i < to; i++ {
				nc.terms[i] = nc.newTerm(&l.terms[i])
				go nc.terms[i].subscribe(ctx, nrec)
			}
			return waitFor(ctx, 120*time.Second, func() (bool, string, error) {
				n, err := nc.subscribers()
				return n >= to, fmt.Sprintf("%d of %d subscribers", n, to), err
			})
		}, nrec)
		if err != nil {
			return err
		}
		res = append(res, side)
	}

	fmt.Fprintf(stdout, "\npossync-bench idle cost: terminals in %d multi-session(s), each with one waiting long-poll on one connection\n", sessions)
	fmt.Fprintf(stdout, "RSS per waiting terminal = (RSS with n waiting − RSS with none) / n; possync terminals did their sync_all first\n")
	for _, s := range res {
		for _, p := range s.Points {
			fmt.Fprintf(stdout, "  %-7s %6d terminals  RSS %7.1f MiB (none: %.1f)  %6.2f KiB per waiting terminal\n",
				s.Name, p.Terminals, p.RSSMB, s.BaseRSSMB, p.KiBPerTerminal)
		}
	}
	out := map[string]any{"mode": "idle", "sessions": sessions, "possync": res[0]}
	if len(res) > 1 {
		out["peer"] = res[1]
	}
	b, err := json.Marshal(out)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n", b)
	if err == nil && (res[0].Errors > 0 || (len(res) > 1 && res[1].Errors > 0)) {
		err = fmt.Errorf("errors while idle: possync %d", res[0].Errors)
	}
	return err
}
