package httpapi

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"possync/appliance"
	"possync/appliance/engine"
)

// Routes and outcomes of possync_http_requests_total.
const (
	routeUpdate = iota
	routePing
	routePoll
	routeStatusPage
	routeStatusJSON
	routeMetrics
	routeHealth
	routePreflight
	routeAdminUpdate
	routeOther
	nRoutes
)

var routeNames = [nRoutes]string{"update", "ping", "poll", "status_page", "status_json", "metrics", "healthz", "preflight", "admin_update", "other"}

const (
	outcomeOK      = iota // answered with a result
	outcomeRefused        // the request was refused (bad request, unknown route, too large, wrong method)
	outcomeFailed         // possync could not serve it (store unavailable, internal error)
	nOutcomes
)

var outcomeNames = [nOutcomes]string{"ok", "refused", "failed"}

// Refusal rules, the label of possync_refused_requests_total.
const (
	ruleInvalid  = "invalid_request"    // JSON-RPC request that cannot be understood
	ruleNoRoute  = "no_route"           // unknown path
	ruleMethod   = "method_not_allowed" // GET on a POST route
	ruleTooLarge = "body_too_large"     // over http.max_body_bytes
	ruleUnread   = "unreadable"         // fasthttp could not read the request
)

var (
	rpcCodes = []string{appliance.EINVALID, appliance.ENOTFOUND, appliance.EUNAVAILABLE, appliance.EINTERNAL, appliance.EFORBIDDEN, appliance.ELIMIT}
	rules    = []string{ruleInvalid, ruleNoRoute, ruleMethod, ruleTooLarge, ruleUnread, ruleNetwork, ruleOrigin, ruleDatabase, ruleLimit, ruleToken}

	// Histogram buckets in seconds: a commit is an fsync on an SD card
	// (about 1 ms to a few hundred); a publish reaches a waiting poll in
	// microseconds unless the machine is overloaded.
	commitBuckets  = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}
	deliverBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1}
)

// serverMetrics holds the metrics of one Server in its own set, so several
// servers in one process (tests) never share counters. Counters on the hot
// paths are created up front: counting is one atomic add, no lookup.
type serverMetrics struct {
	set       *metrics.Set
	requests  [nRoutes][nOutcomes]*metrics.Counter
	rpcErrors map[string]*metrics.Counter
	refused   map[string]*metrics.Counter
	commit    *metrics.PrometheusHistogram
	commitErr *metrics.Counter
	deliver   *metrics.PrometheusHistogram
}

func newServerMetrics(s *Server) *serverMetrics {
	metrics.ExposeMetadata(true) // TYPE lines, so Prometheus knows counters from gauges
	set := metrics.NewSet()
	m := &serverMetrics{set: set, rpcErrors: map[string]*metrics.Counter{}, refused: map[string]*metrics.Counter{}}
	for r := range nRoutes {
		for o := range nOutcomes {
			m.requests[r][o] = set.NewCounter(fmt.Sprintf(`possync_http_requests_total{route=%q,outcome=%q}`, routeNames[r], outcomeNames[o]))
		}
	}
	for _, c := range rpcCodes {
		m.rpcErrors[c] = set.NewCounter(fmt.Sprintf(`possync_rpc_errors_total{code=%q}`, c))
	}
	for _, r := range rules {
		m.refused[r] = set.NewCounter(fmt.Sprintf(`possync_refused_requests_total{rule=%q}`, r))
	}
	m.commit = set.NewPrometheusHistogramExt("possync_commit_seconds", commitBuckets)
	m.commitErr = set.NewCounter("possync_commit_errors_total")
	m.deliver = set.NewPrometheusHistogramExt("possync_publish_to_answer_seconds", deliverBuckets)
	set.RegisterMetricsWriter(s.writeStateMetrics)
	set.RegisterMetricsWriter(s.writeUpdateMetrics)
	return m
}

// Committed implements engine.Observer.
func (m *serverMetrics) Committed(d time.Duration, err error) {
	if err != nil {
		m.commitErr.Inc()
		return
	}
	m.commit.Update(d.Seconds())
}

// Delivered implements engine.Observer.
func (m *serverMetrics) Delivered(d time.Duration, _ int) { m.deliver.Update(d.Seconds()) }

var _ engine.Observer = (*serverMetrics)(nil)

// count records one finished request.
func (m *serverMetrics) count(route, outcome int) { m.requests[route][outcome].Inc() }

func (m *serverMetrics) refuse(rule string) {
	if c := m.refused[rule]; c != nil {
		c.Inc()
	}
}

func (m *serverMetrics) rpcError(code string) {
	c := m.rpcErrors[code]
	if c == nil {
		c = m.rpcErrors[appliance.EINTERNAL]
	}
	c.Inc()
}

// writeStateMetrics writes what is read from the engine and the store at
// scrape time: one Stats snapshot (atomics and two short locks, never a
// session lock), so a scrape never waits behind a commit.
func (s *Server) writeStateMetrics(w io.Writer) {
	st := s.eng.Stats()
	act := s.eng.Status(s.opts.OnlineWindow)
	c := metrics.WriteCounterUint64
	g := metrics.WriteGaugeUint64
	c(w, "possync_updates_total", st.Requests)
	c(w, "possync_orders_accepted_total", st.Accepted)
	c(w, "possync_revision_conflicts_total", st.RevisionErrors)
	c(w, "possync_duplicates_total", st.Duplicates)
	c(w, "possync_sync_all_total", st.SyncAll)
	c(w, "possync_remove_order_total", st.Removes)
	c(w, "possync_relays_total", st.Relays)
	c(w, "possync_pings_total", st.Pings)
	c(w, "possync_store_errors_total", st.StoreErrors)
	c(w, "possync_notifications_published_total", st.Bus.Published)
	c(w, "possync_notifications_delivered_total", st.Bus.Delivered)
	g(w, "possync_polls_waiting", uint64(st.Bus.Waiting))
	g(w, "possync_bus_last_id", st.Bus.Newest)
	g(w, "possync_bus_retained_notifications", uint64(st.Bus.Retained))
	g(w, "possync_bus_retained_bytes", uint64(st.Bus.RetainedBytes))
	g(w, "possync_multi_sessions", uint64(len(act.Sessions)))
	lim := s.eng.Limits()
	g(w, "possync_tracked_databases", uint64(lim.Databases))
	g(w, "possync_tracked_databases_max", uint64(lim.MaxDatabases))
	g(w, "possync_tracked_multi_sessions", uint64(lim.MultiSessions))
	g(w, "possync_tracked_multi_sessions_max", uint64(lim.MaxMultiSessions))
	g(w, "possync_tracked_terminals", uint64(lim.Terminals))
	g(w, "possync_tracked_terminals_max", uint64(lim.MaxTerminals))
	g(w, "possync_open_orders", uint64(max(st.DraftOrders, 0)))
	g(w, "possync_orders", uint64(max(st.Orders, 0)))
	var on, off uint64
	for _, ss := range act.Sessions {
		for _, t := range ss.Terminals {
			if t.Online {
				on++
			} else {
				off++
			}
		}
	}
	metrics.WriteMetadataIfNeeded(w, "possync_terminals", "gauge")
	fmt.Fprintf(w, "possync_terminals{state=\"online\"} %d\npossync_terminals{state=\"offline\"} %d\n", on, off)
	if s.opts.Storage != nil {
		si := s.opts.Storage()
		g(w, "possync_store_bytes", si.StoreBytes)
		g(w, "possync_data_free_bytes", si.FreeBytes)
		g(w, "possync_data_size_bytes", si.TotalBytes)
		c(w, "possync_badger_vlog_gc_runs_total", si.GCRuns)
		c(w, "possync_badger_vlog_gc_rewrites_total", si.GCRewrites)
		c(w, "possync_store_commits_total", si.Commits)
		c(w, "possync_store_transactions_total", si.Transactions)
	}
	health := uint64(1)
	if s.healthErr() != nil {
		health = 0
	}
	g(w, "possync_healthy", health)
	metrics.WriteGaugeFloat64(w, "possync_uptime_seconds", time.Since(s.started).Seconds())
	metrics.WriteMetadataIfNeeded(w, "possync_build_info", "gauge")
	fmt.Fprintf(w, "possync_build_info{version=%s,commit=%s,go_version=%s} 1\n",
		strconv.Quote(appliance.Version), strconv.Quote(appliance.BuildCommit()), strconv.Quote(runtime.Version()))
}

func (s *Server) metricsPage(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("text/plain; version=0.0.4; charset=utf-8")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	var buf bytes.Buffer
	s.metrics.set.WritePrometheus(&buf)
	metrics.WriteProcessMetrics(&buf)
	ctx.SetBody(withHelp(buf.Bytes()))
}
