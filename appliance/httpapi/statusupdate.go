package httpapi

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"possync/appliance"
)

// updatesDoc is the "updates" object of /status.json (docs/status.md):
// the A/B slots and the last update attempt, from update.dir's files.
type updatesDoc struct {
	Available      bool        `json:"available"` // false: no A/B slots on this machine (Note says so)
	Note           string      `json:"note"`
	RunningVersion string      `json:"running_version"`
	RunningSlot    string      `json:"running_slot"` // "A", "B" or "" when not known
	OtherSlot      *slotDoc    `json:"other_slot"`   // null when not known
	LastAttempt    *attemptDoc `json:"last_attempt"` // null when none
	Pending        []string    `json:"pending"`      // bundles waiting in incoming/
}

type slotDoc struct {
	Slot       string `json:"slot"`
	Version    string `json:"version"` // "" = not known (never installed by rauc)
	State      string `json:"state"`
	BootStatus string `json:"boot_status"`
}

type attemptDoc struct {
	At          string `json:"at"` // RFC 3339, the box's wall clock
	AgeSeconds  int64  `json:"age_seconds"`
	Version     string `json:"version"`
	Slot        string `json:"slot"`
	FromVersion string `json:"from_version"`
	FromSlot    string `json:"from_slot"`
	Source      string `json:"source"`
	Result      string `json:"result"`
	Reason      string `json:"reason"`
}

// updates builds the updates object; nil without Options.UpdateState.
func (s *Server) updates() *updatesDoc {
	if s.opts.UpdateState == nil {
		return nil
	}
	st := s.opts.UpdateState()
	d := &updatesDoc{Available: st.Available, Note: st.Note, RunningVersion: appliance.Version, RunningSlot: st.Booted, Pending: st.Pending}
	if d.Pending == nil {
		d.Pending = []string{}
	}
	if o := st.Other; o != nil {
		d.OtherSlot = &slotDoc{Slot: o.Bootname, Version: o.Version, State: o.State, BootStatus: o.BootStatus}
	}
	if a := st.Last; a != nil {
		d.LastAttempt = &attemptDoc{At: a.Time.UTC().Format(time.RFC3339), AgeSeconds: int64(max(time.Since(a.Time), 0).Seconds()),
			Version: a.Version, Slot: a.Slot, FromVersion: a.FromVersion, FromSlot: a.FromSlot, Source: a.Source, Result: a.Result, Reason: a.Reason}
	}
	return d
}

// fmtSlot renders the other slot for the page; status.js has the same.
func fmtSlot(o *slotDoc) string {
	if o == nil {
		return "not known yet"
	}
	v := o.Version
	if v == "" {
		v = "version not known"
	}
	return fmt.Sprintf("%s: %s (%s)", o.Slot, v, o.BootStatus)
}

// fmtAttempt renders the last attempt for the page; status.js has the same.
func fmtAttempt(a *attemptDoc) string {
	if a == nil {
		return "none"
	}
	v := a.Version
	if v == "" {
		v = "a bundle"
	}
	out := fmt.Sprintf("%s → slot %s: %s, %s ago (from %s)", v, a.Slot, a.Result, fmtAge(a.AgeSeconds), a.Source)
	if a.Reason != "" {
		out += " — " + a.Reason
	}
	return out
}

// writeUpdateMetrics writes the slots and the last attempt for /metrics.
func (s *Server) writeUpdateMetrics(w io.Writer) {
	d := s.updates()
	if d == nil || !d.Available {
		return
	}
	other, otherVersion := "", ""
	if d.OtherSlot != nil {
		other, otherVersion = d.OtherSlot.Slot, d.OtherSlot.Version
	}
	metrics.WriteMetadataIfNeeded(w, "possync_update_slots_info", "gauge")
	fmt.Fprintf(w, "possync_update_slots_info{running_slot=%s,running_version=%s,other_slot=%s,other_version=%s} 1\n",
		label(d.RunningSlot), label(d.RunningVersion), label(other), label(otherVersion))
	if a := d.LastAttempt; a != nil {
		at, _ := time.Parse(time.RFC3339, a.At)
		metrics.WriteMetadataIfNeeded(w, "possync_update_last_attempt_timestamp_seconds", "gauge")
		fmt.Fprintf(w, "possync_update_last_attempt_timestamp_seconds{slot=%s,version=%s,result=%s} %d\n",
			label(a.Slot), label(a.Version), label(a.Result), at.Unix())
	}
	metrics.WriteGaugeUint64(w, "possync_update_pending_bundles", uint64(len(d.Pending)))
}

// label quotes a Prometheus label value (text format 0.0.4: backslash,
// double quote and line feed are escaped).
func label(v string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v) + `"`
}
