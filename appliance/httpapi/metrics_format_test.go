package httpapi_test

import (
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"possync/appliance/apptest"
)

// libraryNames are families of github.com/VictoriaMetrics/metrics's Go
// runtime metrics whose names break the Prometheus conventions (a counter
// ending in _count, a gauge ending in _count); dashboards know them by these
// names, so possync leaves them as they are.
var libraryNames = []string{"go_cgo_calls_count", "go_gc_forced_count", "go_cpu_count"}

// GET /metrics is read by Prometheus's own text parser (prometheus/common
// expfmt, strict legacy names), and every family follows the naming rules
// promtool's linter checks: counters and only counters end in _total, no
// _count/_sum/_bucket outside histograms and summaries, a HELP text. The
// families the status work promises are there with their types and labels.
func TestMetricsExpositionParsesAndFollowsConventions(t *testing.T) {
	t.Parallel()
	srv := newServer(t, apptest.Options{})
	p1 := openPOS(t, srv, cfg("shop", 1, 1, 2))
	openPOS(t, srv, cfg("shop", 1, 2, 3))
	o := p1.NewOrder(1)
	p1.AddLine(o, 50, 1, 4.8)
	mustOK(t)(p1.UpdateOrder(o))

	code, _, body := get(t, srv.URL+"/metrics")
	if code != 200 {
		t.Fatalf("GET /metrics = %d", code)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("Prometheus's text parser refuses /metrics: %v", err)
	}

	for name, f := range fams {
		typ := f.GetType()
		switch {
		case strings.TrimSpace(f.GetHelp()) == "":
			t.Errorf("%s has no HELP text", name)
		case slices.Contains(libraryNames, name):
		case typ == dto.MetricType_COUNTER && !strings.HasSuffix(name, "_total"):
			t.Errorf("counter %s does not end in _total", name)
		case typ != dto.MetricType_COUNTER && strings.HasSuffix(name, "_total"):
			t.Errorf("%s ends in _total but is a %v", name, typ)
		case typ != dto.MetricType_HISTOGRAM && typ != dto.MetricType_SUMMARY &&
			(strings.HasSuffix(name, "_count") || strings.HasSuffix(name, "_sum") || strings.HasSuffix(name, "_bucket")):
			t.Errorf("%s (a %v) ends like a histogram series", name, typ)
		}
	}

	for _, want := range []struct {
		name   string
		typ    dto.MetricType
		labels string // label names of the first sample, comma-separated
	}{
		{"possync_http_requests_total", dto.MetricType_COUNTER, "outcome,route"},
		{"possync_rpc_errors_total", dto.MetricType_COUNTER, "code"},
		{"possync_refused_requests_total", dto.MetricType_COUNTER, "rule"},
		{"possync_revision_conflicts_total", dto.MetricType_COUNTER, ""},
		{"possync_duplicates_total", dto.MetricType_COUNTER, ""},
		{"possync_polls_waiting", dto.MetricType_GAUGE, ""},
		{"possync_notifications_delivered_total", dto.MetricType_COUNTER, ""},
		{"possync_publish_to_answer_seconds", dto.MetricType_HISTOGRAM, ""},
		{"possync_commit_seconds", dto.MetricType_HISTOGRAM, ""},
		{"possync_store_bytes", dto.MetricType_GAUGE, ""},
		{"possync_data_free_bytes", dto.MetricType_GAUGE, ""},
		{"possync_badger_vlog_gc_runs_total", dto.MetricType_COUNTER, ""},
		{"possync_store_commits_total", dto.MetricType_COUNTER, ""},
		{"possync_store_transactions_total", dto.MetricType_COUNTER, ""},
		{"possync_terminals", dto.MetricType_GAUGE, "state"},
		{"possync_build_info", dto.MetricType_GAUGE, "commit,go_version,version"},
	} {
		f := fams[want.name]
		if f == nil {
			t.Errorf("/metrics has no family %s", want.name)
			continue
		}
		var labels []string
		for _, l := range f.GetMetric()[0].GetLabel() {
			labels = append(labels, l.GetName())
		}
		slices.Sort(labels)
		if f.GetType() != want.typ || strings.Join(labels, ",") != want.labels {
			t.Errorf("%s is a %v with labels %v, want a %v with %q", want.name, f.GetType(), labels, want.typ, want.labels)
		}
	}
	if h := fams["possync_commit_seconds"].GetMetric()[0].GetHistogram(); h.GetSampleCount() < 2 || h.GetSampleSum() <= 0 {
		t.Errorf("possync_commit_seconds after two sync_alls and an order: count %d sum %v", h.GetSampleCount(), h.GetSampleSum())
	}
	// Every commit the timing observer saw without error is durable, in a
	// transaction of its own or shared.
	h := fams["possync_commit_seconds"].GetMetric()[0].GetHistogram()
	commits := fams["possync_store_commits_total"].GetMetric()[0].GetCounter().GetValue()
	txns := fams["possync_store_transactions_total"].GetMetric()[0].GetCounter().GetValue()
	if commits != float64(h.GetSampleCount()) || txns < 1 || txns > commits {
		t.Errorf("possync_store_commits_total %v, possync_store_transactions_total %v after %d commits: want all the commits, in 1 to %d transactions",
			commits, txns, h.GetSampleCount(), h.GetSampleCount())
	}
}
