package update

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// BootCheck decides, after a boot, whether the booted slot is good.
type BootCheck struct {
	Installer *Installer
	// HealthURL is possync's health check that commits a write:
	// http://127.0.0.1:<port>/healthz?write=1
	HealthURL string
	Within    time.Duration // update.healthy_within
	Interval  time.Duration // between health checks (default 1s)
}

// BootResult is what Run decided.
type BootResult struct {
	Booted  string
	Trial   bool   // the booted slot was installed by an update and not yet marked good
	Good    bool   // marked good
	Reboot  bool   // marked bad: the caller reboots into the other slot
	Reason  string // why not good
	Elapsed time.Duration
}

// Run records a rolled-back update, waits up to Within for possync to be
// healthy with a committed write, then marks the booted slot good. A slot
// on trial that is not healthy in time is marked bad (Reboot is set: the
// caller reboots). An ordinary boot that is not healthy is not marked good
// and not rebooted: U-Boot's attempt counter of that slot runs down with
// each further boot, and a reboot would not cure what is wrong (a full
// data partition, say) — Run returns an error.
func (b *BootCheck) Run(ctx context.Context) (BootResult, error) {
	in := b.Installer
	unlock, err := in.lock()
	if err != nil {
		return BootResult{}, err
	}
	defer unlock()
	st, err := in.Rauc.Status(ctx)
	if err != nil {
		return BootResult{}, fmt.Errorf("rauc status: %w", err)
	}
	res := BootResult{Booted: st.Booted}
	if err := WriteSlots(in.Dir, st, in.Running); err != nil {
		in.log().Warn("write slots.json", "err", err)
	}
	as, err := ReadAttempts(in.Dir)
	if err != nil {
		return res, err
	}
	var last Attempt
	if len(as) > 0 {
		last = as[len(as)-1]
	}
	if len(as) > 0 && last.Slot != st.Booted && unfinished(last.Result) {
		rb := Attempt{Version: last.Version, Slot: last.Slot, FromVersion: in.Running, FromSlot: st.Booted, Source: SourceBoot,
			Result: ResultRolledBack, Reason: rollbackReason(last, st.Booted, in.Running), Bundle: last.Bundle}
		if err := AppendAttempt(in.Dir, rb); err != nil {
			return res, err
		}
		in.log().Warn("update rolled back", "slot", last.Slot, "version", last.Version, "running", in.Running, "reason", rb.Reason)
		last = rb
	}
	res.Trial = last.Slot == st.Booted && (last.Result == ResultInstalled || last.Result == ResultBooting)
	rec := Attempt{Version: in.Running, Slot: st.Booted, FromVersion: last.FromVersion, FromSlot: last.FromSlot, Source: SourceBoot, Bundle: last.Bundle}
	if res.Trial {
		rec.Result, rec.Reason = ResultBooting, fmt.Sprintf("first boot of slot %s; waiting up to %s for possync to be healthy", st.Booted, b.Within)
		if err := AppendAttempt(in.Dir, rec); err != nil {
			return res, err
		}
	}
	start := time.Now()
	why := b.waitHealthy(ctx)
	res.Elapsed = time.Since(start)
	if why == "" {
		if err := in.Rauc.Mark(ctx, true); err != nil {
			return res, fmt.Errorf("mark slot %s good: %w", st.Booted, err)
		}
		res.Good = true
		if res.Trial {
			rec.Result, rec.Reason, rec.Time = ResultGood, fmt.Sprintf("possync healthy with a committed write %s after boot-check started", res.Elapsed.Round(time.Second)), time.Time{}
			if err := AppendAttempt(in.Dir, rec); err != nil {
				return res, err
			}
		}
		in.log().Info("slot marked good", "slot", st.Booted, "version", in.Running, "after", res.Elapsed.Round(time.Millisecond), "trial", res.Trial)
		b.refreshSlots(ctx)
		return res, nil
	}
	res.Reason = why
	if !res.Trial {
		return res, fmt.Errorf("possync not healthy within %s (%s): slot %s not marked good (not a trial boot: no reboot)", b.Within, why, st.Booted)
	}
	rec.Result, rec.Reason, rec.Time = ResultFailed, fmt.Sprintf("possync not healthy within %s: %s", b.Within, why), time.Time{}
	if err := AppendAttempt(in.Dir, rec); err != nil {
		in.log().Error("record failed boot", "err", err)
	}
	if err := in.Rauc.Mark(ctx, false); err != nil {
		// Not marked bad: the reboot still costs the slot one of its
		// U-Boot attempts; it runs out after three.
		in.log().Error("mark slot bad", "slot", st.Booted, "err", err)
	}
	b.refreshSlots(ctx)
	res.Reboot = true
	return res, nil
}

func (b *BootCheck) refreshSlots(ctx context.Context) {
	if st, err := b.Installer.Rauc.Status(ctx); err == nil {
		_ = WriteSlots(b.Installer.Dir, st, b.Installer.Running)
	}
}

// unfinished reports whether an attempt with result r was still under way:
// the box came back elsewhere before it was decided.
func unfinished(r string) bool {
	switch r {
	case ResultInstalling, ResultInstalled, ResultBooting, ResultFailed:
		return true
	}
	return false
}

func rollbackReason(last Attempt, booted, running string) string {
	switch last.Result {
	case ResultInstalling:
		return fmt.Sprintf("the install into slot %s did not finish (power lost or restart during rauc install); the box runs slot %s (%s)", last.Slot, booted, running)
	case ResultFailed:
		return fmt.Sprintf("slot %s was marked bad (%s); the box runs slot %s (%s) again", last.Slot, last.Reason, booted, running)
	default:
		return fmt.Sprintf("slot %s was never marked good (it did not come up, or lost power, on each of its boot attempts); the box runs slot %s (%s) again", last.Slot, booted, running)
	}
}

// healthAnswer is the part of /healthz?write=1 boot-check reads.
type healthAnswer struct {
	Status         string `json:"status"`
	Detail         string `json:"detail"`
	WriteCommitted bool   `json:"write_committed"`
}

// waitHealthy polls HealthURL until it answers 200 with write_committed,
// or Within passes; it returns "" or the last reason it was not healthy.
func (b *BootCheck) waitHealthy(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, b.Within)
	defer cancel()
	interval := b.Interval
	if interval <= 0 {
		interval = time.Second
	}
	client := &http.Client{Timeout: 10 * time.Second}
	why := "no answer yet"
	for {
		w := b.checkOnce(ctx, client)
		switch {
		case w == "":
			return ""
		case ctx.Err() != nil && why != "no answer yet":
			return why // cut by the deadline: the answer before says more
		}
		why = w
		select {
		case <-ctx.Done():
			return why
		case <-time.After(interval):
		}
	}
}

func (b *BootCheck) checkOnce(ctx context.Context, client *http.Client) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.HealthURL, nil)
	if err != nil {
		return err.Error()
	}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return "no answer from " + b.HealthURL
		}
		return err.Error()
	}
	defer resp.Body.Close()
	var h healthAnswer
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err := json.Unmarshal(body, &h); err != nil {
		return fmt.Sprintf("%s answered %d with no health JSON", b.HealthURL, resp.StatusCode)
	}
	switch {
	case resp.StatusCode != http.StatusOK:
		return fmt.Sprintf("/healthz %d %s: %s", resp.StatusCode, h.Status, h.Detail)
	case !h.WriteCommitted:
		return "/healthz committed no write (a possync without ?write=1 support?)"
	}
	return ""
}
