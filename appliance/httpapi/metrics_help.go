package httpapi

import (
	"bytes"
	"strings"
)

// metricHelp is the HELP text of each possync metric family (docs/status.md
// has the same list with labels). VictoriaMetrics/metrics writes TYPE lines
// but leaves HELP empty; withHelp fills it in at scrape time.
var metricHelp = map[string]string{
	"possync_update_slots_info":                     "The A/B slots: the running one and the other, with their versions (1; absent without A/B slots).",
	"possync_update_last_attempt_timestamp_seconds": "Wall-clock time of the newest update attempt, labelled with its slot, version and result.",
	"possync_update_pending_bundles":                "Update bundles waiting in update.dir/incoming.",
	"possync_http_requests_total":                   "Finished HTTP requests by route and outcome (ok, refused, failed).",
	"possync_rpc_errors_total":                      "JSON-RPC errors answered, by appliance error code.",
	"possync_refused_requests_total":                "Requests refused, by the rule that refused them.",
	"possync_updates_total":                         "/pos_multi_session_sync/update requests handled.",
	"possync_orders_accepted_total":                 "update_order messages accepted.",
	"possync_revision_conflicts_total":              "Revision errors answered to update_order and remove_order.",
	"possync_duplicates_total":                      "Duplicate update_order messages (same nonce).",
	"possync_sync_all_total":                        "sync_all requests.",
	"possync_remove_order_total":                    "remove_order requests.",
	"possync_relays_total":                          "Other actions relayed to the multi-session.",
	"possync_pings_total":                           "/pos_longpolling/update PINGs.",
	"possync_store_errors_total":                    "Commits the store refused (disk full, I/O error).",
	"possync_commit_errors_total":                   "Failed store commits seen by the timing observer, PINGs included.",
	"possync_commit_seconds":                        "Duration of one store commit, from the call until its batch is durable (overlapping commits share one synced transaction), in seconds.",
	"possync_store_commits_total":                   "Store commits made durable since start.",
	"possync_store_transactions_total":              "Synced Badger transactions since start: one per group of overlapping commits; commits/transactions is the mean group size.",
	"possync_publish_to_answer_seconds":             "From a notification's publish to the woken long-poll returning it, in seconds.",
	"possync_notifications_published_total":         "Bus notifications made visible.",
	"possync_notifications_delivered_total":         "Notifications returned to polls, one per item of a poll answer.",
	"possync_polls_waiting":                         "Long-polls waiting now.",
	"possync_bus_last_id":                           "Highest bus id made visible.",
	"possync_bus_retained_notifications":            "Notifications kept in memory for reconnecting polls.",
	"possync_bus_retained_bytes":                    "Estimated memory of the retained notifications, in bytes (capped by bus.max_retained_mib).",
	"possync_multi_sessions":                        "Multi-sessions stored.",
	"possync_tracked_databases":                     "Databases tracked.",
	"possync_tracked_databases_max":                 "security.max_databases.",
	"possync_tracked_multi_sessions":                "Multi-sessions tracked.",
	"possync_tracked_multi_sessions_max":            "security.max_multi_sessions.",
	"possync_tracked_terminals":                     "POS rows tracked.",
	"possync_tracked_terminals_max":                 "security.max_terminals.",
	"possync_open_orders":                           "Draft orders of each multi-session's current run, all multi-sessions.",
	"possync_orders":                                "Orders kept, any state.",
	"possync_terminals":                             "Tills known, by state (online: a poll waits or ended within a minute).",
	"possync_store_bytes":                           "Disk space of the store's files, in bytes.",
	"possync_data_free_bytes":                       "Free space on the data file system, in bytes.",
	"possync_data_size_bytes":                       "Size of the data file system, in bytes.",
	"possync_badger_vlog_gc_runs_total":             "Badger value-log GC passes.",
	"possync_badger_vlog_gc_rewrites_total":         "Badger value-log files rewritten by GC.",
	"possync_healthy":                               "1 when /healthz would answer 200, else 0.",
	"possync_uptime_seconds":                        "Seconds since the HTTP server started.",
	"possync_build_info":                            "Always 1; the labels give version, commit and Go version.",
}

// withHelp returns the Prometheus text in b with every empty "# HELP name"
// line completed: possync families from metricHelp, the library's go_* and
// process_* families with a pointer to where they come from. It also types
// the library's process_io_*_total families as the counters they are (it
// declares them gauges; promtool check metrics flags that).
func withHelp(b []byte) []byte {
	const prefix = "# HELP "
	typePrefix, gauge := []byte("# TYPE "), []byte(" gauge")
	var out bytes.Buffer
	out.Grow(len(b) + len(b)/4)
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if rest, ok := bytes.CutPrefix(line, typePrefix); ok {
			if name, ok := bytes.CutSuffix(rest, gauge); ok && bytes.HasSuffix(name, []byte("_total")) {
				out.Write(typePrefix)
				out.Write(name)
				out.WriteString(" counter\n")
				continue
			}
		}
		out.Write(line)
		if name, ok := bytes.CutPrefix(line, []byte(prefix)); ok && bytes.IndexByte(name, ' ') < 0 {
			out.WriteByte(' ')
			out.WriteString(helpFor(string(name)))
		}
		out.WriteByte('\n')
	}
	return out.Bytes()
}

func helpFor(name string) string {
	if h, ok := metricHelp[name]; ok {
		return h
	}
	switch {
	case strings.HasPrefix(name, "go_"):
		return "Go runtime metric (runtime/metrics, written by github.com/VictoriaMetrics/metrics)."
	case strings.HasPrefix(name, "process_"):
		return "Process metric read from /proc (github.com/VictoriaMetrics/metrics)."
	}
	return "possync metric (see docs/status.md)."
}
