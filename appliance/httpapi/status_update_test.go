package httpapi_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"possync/appliance/apptest"
	upd "possync/appliance/update"
)

// The status page, /status.json and /metrics show the running slot, the
// other slot's version and the last attempt, read from update.dir's files
// as the root tools write them; values are escaped like every other field.
func TestStatusShowsUpdates(t *testing.T) {
	dir := t.TempDir()
	st, err := upd.ParseRaucStatus([]byte(`{"compatible":"possync-arm64","booted":"B","boot_primary":"rootfs.1","slots":[` +
		`{"rootfs.0":{"bootname":"A","state":"inactive","boot_status":"good","slot_status":{"bundle":{"version":"0.9.0"}}}},` +
		`{"rootfs.1":{"bootname":"B","state":"booted","boot_status":"good"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := upd.WriteSlots(dir, st, "1.0.0"); err != nil {
		t.Fatal(err)
	}
	if err := upd.AppendAttempt(dir, upd.Attempt{Time: time.Now().Add(-3 * time.Minute), Version: "2.0.0<script>", Slot: "A", FromVersion: "1.0.0", FromSlot: "B",
		Source: upd.SourceBoot, Result: upd.ResultRolledBack, Reason: `slot A was marked bad (<b>"x"</b>)`}); err != nil {
		t.Fatal(err)
	}
	srv := newServer(t, apptest.Options{UpdateState: func() upd.State { return upd.ReadState(dir, "console=ttyS0 rauc.slot=B") }})

	code, _, body := get(t, srv.URL+"/status.json")
	if code != 200 {
		t.Fatalf("status.json %d", code)
	}
	var doc struct {
		Updates struct {
			Available   bool   `json:"available"`
			RunningSlot string `json:"running_slot"`
			OtherSlot   struct {
				Slot, Version string
			} `json:"other_slot"`
			LastAttempt struct {
				Version, Result, Reason string
				AgeSeconds              int64 `json:"age_seconds"`
			} `json:"last_attempt"`
		} `json:"updates"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	u := doc.Updates
	if !u.Available || u.RunningSlot != "B" || u.OtherSlot.Slot != "A" || u.OtherSlot.Version != "0.9.0" ||
		u.LastAttempt.Result != "rolled-back" || u.LastAttempt.AgeSeconds < 170 {
		t.Fatalf("updates = %+v", u)
	}

	_, _, page := get(t, srv.URL+"/")
	for _, want := range []string{`<dd id="upd-running">B (`, `<dd id="upd-other">A: 0.9.0 (good)</dd>`,
		`2.0.0&lt;script&gt; → slot A: rolled-back, 3 min`, `(&lt;b&gt;&#34;x&#34;&lt;/b&gt;)`} {
		if !strings.Contains(string(page), want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if strings.Contains(string(page), "<script>\"") || strings.Contains(string(page), "<b>\"x\"") {
		t.Error("page holds unescaped attempt text")
	}

	_, _, m := get(t, srv.URL+"/metrics")
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(m)))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	if f := fams["possync_update_slots_info"]; f == nil || len(f.Metric) != 1 || f.GetHelp() == "" {
		t.Fatalf("possync_update_slots_info = %v", f)
	}
	f := fams["possync_update_last_attempt_timestamp_seconds"]
	if f == nil || f.Metric[0].GetGauge().GetValue() < float64(time.Now().Add(-time.Hour).Unix()) {
		t.Fatalf("last attempt metric = %v", f)
	}
}

// On a machine without A/B slots the section says so plainly, and
// /metrics has no update families.
func TestStatusWithoutSlots(t *testing.T) {
	dir := t.TempDir()
	srv := newServer(t, apptest.Options{UpdateState: func() upd.State { return upd.ReadState(dir, "root=/dev/sda1") }})
	_, _, page := get(t, srv.URL+"/")
	if !strings.Contains(string(page), `<dt>Updates</dt><dd id="upd-note">this machine has no A/B slots`) {
		t.Errorf("page lacks the no-slots note:\n%.3000s", page)
	}
	_, _, m := get(t, srv.URL+"/metrics")
	if strings.Contains(string(m), "possync_update_") {
		t.Error("/metrics has update families without slots")
	}
}
