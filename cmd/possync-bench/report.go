package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// sideJSON is the figures of one server in the JSON summary line.
type sideJSON struct {
	Name               string   `json:"name,omitempty"`
	UpdatesSent        int64    `json:"updates_sent"`
	UpdatesAcked       int64    `json:"updates_acked"`
	UpdatesPerS        float64  `json:"updates_per_s"`
	Deliveries         int64    `json:"deliveries"`
	DeliveriesExpected int64    `json:"deliveries_expected"`
	Gaps               int64    `json:"gaps"`
	Errors             int64    `json:"errors"`
	AckP50             float64  `json:"ack_p50_ms"`
	AckP99             float64  `json:"ack_p99_ms"`
	FanoutP50          float64  `json:"fanout_p50_ms"`
	FanoutP90          float64  `json:"fanout_p90_ms"`
	FanoutP99          float64  `json:"fanout_p99_ms"`
	FanoutMax          float64  `json:"fanout_max_ms"`
	MsgBytesAvg        int64    `json:"msg_bytes_avg"`
	ServerRSSMB        *float64 `json:"server_rss_mb"`
	ServerCPUS         *float64 `json:"server_cpu_s"`
	BenchCPUS          float64  `json:"bench_cpu_s"`
	LastError          string   `json:"last_error,omitempty"`
}

// summaryJSON is the last stdout line of a fan-out or throughput run.
type summaryJSON struct {
	Mode      string  `json:"mode"` // "fanout" or "throughput"
	Pos       int     `json:"pos"`
	Sessions  int     `json:"sessions"`
	Rate      float64 `json:"rate"`              // updates/s; 0 = throughput mode
	Writers   int     `json:"writers,omitempty"` // throughput mode: per multi-session
	DurationS float64 `json:"duration_s"`
	sideJSON
	Peer             *sideJSON `json:"peer,omitempty"`
	RatioP50         *float64  `json:"ratio_p50,omitempty"` // possync / peer fan-out
	RatioP99         *float64  `json:"ratio_p99,omitempty"`
	RatioUpdatesPerS *float64  `json:"ratio_updates_per_s,omitempty"`
}

func msf(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Millisecond)*100) / 100 }

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }

func round2(f float64) float64 { return math.Round(f*100) / 100 }

func toSide(r result) sideJSON {
	s := r.snap
	j := sideJSON{
		UpdatesSent: s.sent, UpdatesAcked: s.acked, Deliveries: s.deliveries, DeliveriesExpected: s.expected,
		Gaps: s.gaps + s.orderGaps, Errors: s.errors + s.unknown,
		AckP50: msf(s.ackP50), AckP99: msf(s.ackP99),
		FanoutP50: msf(s.fanP50), FanoutP90: msf(s.fanP90), FanoutP99: msf(s.fanP99), FanoutMax: msf(s.fanMax),
		BenchCPUS: round2(r.benchCPU.Seconds()), LastError: s.lastErr,
	}
	if r.elapsed > 0 {
		j.UpdatesPerS = round2(float64(s.acked) / r.elapsed.Seconds())
	}
	if s.sent > 0 {
		j.MsgBytesAvg = s.msgBytes / s.sent
	}
	if r.procsSeen > 0 {
		rss, cpu := round2(r.rssMiB), round2(r.cpu.Seconds())
		j.ServerRSSMB, j.ServerCPUS = &rss, &cpu
	}
	return j
}

func ratio(a, b float64) *float64 {
	if b <= 0 {
		return nil
	}
	// Three significant digits: a ratio of 0.005 (possync's p99 far
	// below a stalled peer's) must not print as 0.
	r, _ := strconv.ParseFloat(strconv.FormatFloat(a/b, 'g', 3, 64), 64)
	return &r
}

func summarize(main result, peer *result) summaryJSON {
	p := main.p
	s := summaryJSON{Mode: "fanout", Pos: p.pos, Sessions: p.sessions, Rate: p.rate, DurationS: p.duration.Seconds(), sideJSON: toSide(main)}
	if p.rate == 0 {
		s.Mode, s.Writers = "throughput", p.writers
	}
	if peer != nil {
		pj := toSide(*peer)
		pj.Name = peer.side
		s.Peer = &pj
		s.RatioP50 = ratio(s.FanoutP50, pj.FanoutP50)
		s.RatioP99 = ratio(s.FanoutP99, pj.FanoutP99)
		if p.rate == 0 {
			s.RatioUpdatesPerS = ratio(s.UpdatesPerS, pj.UpdatesPerS)
		}
	}
	return s
}

// report writes the readable table and, as the very last line, the JSON
// summary.
func report(w io.Writer, main result, peer *result) error {
	sum := summarize(main, peer)
	p := main.p
	fmt.Fprintln(w)
	what := fmt.Sprintf("%.0f update_order/s", p.rate)
	if p.rate == 0 {
		what = fmt.Sprintf("throughput: %d writer(s) per multi-session, each sending its next update when the last is acknowledged", p.writers)
	}
	fmt.Fprintf(w, "possync-bench: %d terminals in %d multi-session(s), %s for %v; orders of 5–30 lines, %.1f KiB on average\n",
		p.pos, p.sessions, what, p.duration, float64(sum.MsgBytesAvg)/1024)
	fmt.Fprintln(w, "fan-out = from an update's scheduled send time until the last other terminal of its multi-session has it")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	sides := []sideJSON{sum.sideJSON}
	names := []string{"possync"}
	if sum.Peer != nil {
		sides = append(sides, *sum.Peer)
		names = append(names, sum.Peer.Name)
	}
	row := func(label string, f func(s sideJSON) string, r *float64) {
		cells := []string{label}
		for _, s := range sides {
			cells = append(cells, f(s))
		}
		if sum.Peer != nil {
			if r != nil {
				cells = append(cells, strconv.FormatFloat(*r, 'f', -1, 64))
			} else {
				cells = append(cells, "")
			}
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	hdr := append([]string{""}, names...)
	if sum.Peer != nil {
		hdr = append(hdr, "ratio")
	}
	fmt.Fprintln(tw, strings.Join(hdr, "\t")+"\t")
	f2 := func(v float64) string { return fmt.Sprintf("%.2f", v) }
	opt := func(v *float64) string {
		if v == nil {
			return "n/a"
		}
		return f2(*v)
	}
	row("updates acknowledged", func(s sideJSON) string { return fmt.Sprint(s.UpdatesAcked) }, nil)
	row("acknowledged updates/s", func(s sideJSON) string { return f2(s.UpdatesPerS) }, sum.RatioUpdatesPerS)
	row("deliveries / expected", func(s sideJSON) string { return fmt.Sprintf("%d/%d", s.Deliveries, s.DeliveriesExpected) }, nil)
	row("gaps", func(s sideJSON) string { return fmt.Sprint(s.Gaps) }, nil)
	row("errors", func(s sideJSON) string { return fmt.Sprint(s.Errors) }, nil)
	row("ack p50 ms", func(s sideJSON) string { return f2(s.AckP50) }, nil)
	row("ack p99 ms", func(s sideJSON) string { return f2(s.AckP99) }, nil)
	row("fan-out p50 ms", func(s sideJSON) string { return f2(s.FanoutP50) }, sum.RatioP50)
	row("fan-out p90 ms", func(s sideJSON) string { return f2(s.FanoutP90) }, nil)
	row("fan-out p99 ms", func(s sideJSON) string { return f2(s.FanoutP99) }, sum.RatioP99)
	row("fan-out max ms", func(s sideJSON) string { return f2(s.FanoutMax) }, nil)
	row("server RSS MiB (end)", func(s sideJSON) string { return opt(s.ServerRSSMB) }, nil)
	row("server CPU s (run)", func(s sideJSON) string { return opt(s.ServerCPUS) }, nil)
	row("bench CPU s (run)", func(s sideJSON) string { return f2(s.BenchCPUS) }, nil)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "per update:")
	fmt.Fprintf(w, "  possync: %s\n", main.perUpdate)
	if peer != nil {
		fmt.Fprintf(w, "  %s: %s\n", peer.side, peer.perUpdate)
	}
	fmt.Fprintln(w, "gaps: message_ID gaps (possync, ms.js check) plus updates a terminal got out of its sender's order (both sides)")
	for _, s := range sides {
		if s.LastError != "" {
			fmt.Fprintf(w, "last error (%s): %s\n", cmpName(s.Name), s.LastError)
		}
	}
	b, err := json.Marshal(sum)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

func cmpName(n string) string {
	if n == "" {
		return "possync"
	}
	return n
}

// check returns an error when a side lost, duplicated or reordered
// updates, or failed.
func check(r result) error {
	s := r.snap
	var probs []string
	if s.deliveries != s.expected {
		probs = append(probs, fmt.Sprintf("deliveries %d, expected %d", s.deliveries, s.expected))
	}
	if g := s.gaps + s.orderGaps; g > 0 {
		probs = append(probs, fmt.Sprintf("%d gaps", g))
	}
	if e := s.errors + s.unknown; e > 0 {
		probs = append(probs, fmt.Sprintf("%d errors (last: %s)", e, s.lastErr))
	}
	if s.acked == 0 {
		probs = append(probs, "no update acknowledged")
	}
	if len(probs) == 0 {
		return nil
	}
	return fmt.Errorf("%s: %s", r.side, strings.Join(probs, "; "))
}
