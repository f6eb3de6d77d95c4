package apptest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"
)

// Notification is one bus notification as /longpolling/poll returns it
// (§3.1): {"id":…,"channel":…,"message":…}. Message is decoded with
// json.Number for numbers.
type Notification struct {
	ID      int64
	Channel string // the channel value (a JSON string on the wire)
	Message any
	At      time.Time // when the poll answer arrived

	// Set by the poller from the ms.js filter (§6.1) for pos.multi_session
	// messages: Echo = the client ignores it as its own; Gap = its
	// message_ID does not follow the client's counter, so the client asks
	// for a full sync_all (and still applies it).
	Echo, Gap bool
}

// Kind returns element [1] of the channel ("pos.multi_session",
// "pos.longpolling"), the only part the client dispatches on.
func (n Notification) Kind() string {
	var parts []any
	if json.Unmarshal([]byte(n.Channel), &parts) != nil || len(parts) < 2 {
		return ""
	}
	s, _ := parts[1].(string)
	return s
}

// IsPong reports whether n is the "PONG" answer to a PING.
func (n Notification) IsPong() bool { return n.Kind() == "pos.longpolling" && n.Message == "PONG" }

// Msg returns the message as an object (nil if it is not one).
func (n Notification) Msg() map[string]any { m, _ := n.Message.(map[string]any); return m }

// Action returns message.action ("" if none).
func (n Notification) Action() string { s, _ := n.Msg()["action"].(string); return s }

// Data returns message.data (nil if none).
func (n Notification) Data() map[string]any { d, _ := n.Msg()["data"].(map[string]any); return d }

// MessageID returns message.data.message_ID.
func (n Notification) MessageID() int64 { return Int(n.Data()["message_ID"]) }

// UID returns message.data.uid.
func (n Notification) UID() string { s, _ := n.Data()["uid"].(string); return s }

func (n Notification) String() string {
	if n.IsPong() {
		return fmt.Sprintf("#%d PONG", n.ID)
	}
	return fmt.Sprintf("#%d %s %s uid=%q message_ID=%d", n.ID, n.Channel, n.Action(), n.UID(), n.MessageID())
}

// PollParams returns the params of the client's poll request with both
// channels of this POS (§3.1).
func (t *Terminal) PollParams(last int64) map[string]any {
	return map[string]any{
		"channels": []string{t.Channel("pos.longpolling"), t.Channel("pos.multi_session")},
		"last":     last,
		"options":  map[string]any{"bus_inactivity": 1000 + rand.Int64N(9000)},
	}
}

// PollOnce sends one poll with this POS's channels and the given last and
// returns the parsed notifications. It does not touch the poller's state.
func (t *Terminal) PollOnce(last int64) ([]Notification, RawResponse, error) {
	ctx, cancel := context.WithTimeout(t.ctx, 65*time.Second)
	defer cancel()
	r := t.call(ctx, RoutePoll, t.PollParams(last))
	ns, err := ParsePoll(r)
	return ns, r, err
}

// ParsePoll checks that r is a successful poll answer and returns its
// notifications.
func ParsePoll(r RawResponse) ([]Notification, error) {
	if err := r.Failure(); err != nil {
		return nil, err
	}
	items, ok := r.Result.([]any)
	if !ok {
		return nil, fmt.Errorf("poll result is %T, want an array: %.300s", r.Result, r.Body)
	}
	now := time.Now()
	out := make([]Notification, 0, len(items))
	for i, it := range items {
		m, ok := it.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("poll result[%d] is %T, want an object", i, it)
		}
		id, ok := m["id"].(json.Number)
		if !ok {
			return nil, fmt.Errorf("poll result[%d].id is %T, want a number", i, m["id"])
		}
		n, err := id.Int64()
		if err != nil {
			return nil, fmt.Errorf("poll result[%d].id %s: %v", i, id, err)
		}
		ch, ok := m["channel"].(string)
		if !ok {
			return nil, fmt.Errorf("poll result[%d].channel is %T, want a string", i, m["channel"])
		}
		if _, ok := m["message"]; !ok {
			return nil, fmt.Errorf("poll result[%d] has no message", i)
		}
		out = append(out, Notification{ID: n, Channel: ch, Message: m["message"], At: now})
	}
	return out, nil
}

// StartPolling starts the bus poller: it long-polls /longpolling/poll with
// this POS's two channels and its last id, forever, delivering every
// notification on Notifications() in order and tracking message_ID (§6.1).
// It does nothing if the poller already runs.
func (t *Terminal) StartPolling() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pollStop != nil {
		return
	}
	ctx, stop := context.WithCancel(t.ctx)
	done := make(chan struct{})
	t.pollStop, t.pollDone = stop, done
	go func() {
		defer close(done)
		t.pollLoop(ctx)
	}()
}

// StopPolling stops the poller and waits for it; a poll in flight is
// cancelled through its request context. Buffered notifications stay
// readable.
func (t *Terminal) StopPolling() {
	t.mu.Lock()
	stop, done := t.pollStop, t.pollDone
	t.pollStop, t.pollDone = nil, nil
	t.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
}

// Polls returns how many polls have been answered successfully.
func (t *Terminal) Polls() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.polls
}

func (t *Terminal) pollLoop(ctx context.Context) {
	trusted := false // last came from our own answers, so every new id must exceed it
	for ctx.Err() == nil {
		last := t.Last()
		pctx, cancel := context.WithTimeout(ctx, 65*time.Second) // browser: 60 s
		r := t.call(pctx, RoutePoll, t.PollParams(last))
		cancel()
		if ctx.Err() != nil {
			return
		}
		ns, err := ParsePoll(r)
		if err != nil {
			t.mu.Lock()
			t.pollErrs = append(t.pollErrs, err)
			t.mu.Unlock()
			if r.Err == nil && r.Status == http.StatusOK {
				t.tb.Errorf("%v: bad poll answer: %v", t, err)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(t.cfg.PollRetry):
			}
			continue
		}
		if got := r.Header.Get("Access-Control-Allow-Origin"); got != "*" {
			t.tb.Errorf("%v: poll answer Access-Control-Allow-Origin = %q, want \"*\"", t, got)
		}
		prev := int64(0)
		for _, n := range ns {
			if n.ID <= prev {
				t.tb.Errorf("%v: poll answer ids not increasing: %d after %d", t, n.ID, prev)
			}
			if trusted && n.ID <= last {
				t.tb.Errorf("%v: poll with last=%d returned old id %d (%v)", t, last, n.ID, n)
			}
			prev = n.ID
		}
		t.mu.Lock()
		t.polls++
		if t.last != last { // SetLast while the poll was in flight
			trusted = false
			t.mu.Unlock()
			continue
		}
		for i := range ns {
			if ns[i].ID > t.last { // _lastNotificationID = max(ids)
				t.last = ns[i].ID
			}
			ns[i].Echo, ns[i].Gap = t.track(ns[i])
		}
		t.mu.Unlock()
		trusted = true
		for _, n := range ns {
			select {
			case t.notes <- n:
			case <-ctx.Done():
				return
			}
		}
	}
}

// track applies the incoming filter of ms.js §6.1 to n and reports whether
// the client ignores n as its own echo and whether n is a gap. t.mu must be
// held.
func (t *Terminal) track(n Notification) (echo, gap bool) {
	if n.Kind() != "pos.multi_session" {
		return false, false
	}
	m := n.Msg()
	if m == nil {
		return false, false
	}
	field := func(k string) any { // "read from the top level, else from data"
		if v, ok := m[k]; ok {
			return v
		}
		return n.Data()[k]
	}
	action := n.Action()
	sameSession := Int(field("session_id")) == t.cfg.SessionID
	sameLogin := Int(field("login_number")) == t.cfg.LoginNumber
	mid := n.MessageID()
	switch {
	case sameSession && sameLogin && action != "sync_all": // own echo
		t.messageID = mid
		return true, false
	case sameSession && !sameLogin && action == "sync_all": // another device's resync
		t.messageID = mid
		return true, false
	case action == "sync_all":
		t.messageID = mid
	case mid == t.messageID+1:
		t.messageID = mid
	default:
		t.gaps = append(t.gaps, Gap{BusID: n.ID, Action: action, UID: n.UID(), Want: t.messageID + 1, Got: mid})
		return false, true
	}
	return false, false
}

// Notifications returns the channel on which the poller delivers every
// notification of both channels, in bus id order.
func (t *Terminal) Notifications() <-chan Notification { return t.notes }

// ErrTimeout is returned by Next, WaitFor and Barrier when nothing matching
// arrived in time.
var ErrTimeout = errors.New("timed out waiting for a bus notification")

// Next returns the next notification, waiting at most timeout.
func (t *Terminal) Next(timeout time.Duration) (Notification, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case n := <-t.notes:
		return n, nil
	case <-timer.C:
		return Notification{}, fmt.Errorf("%v: %w after %v (last=%d, poll errors=%d)", t, ErrTimeout, timeout, t.Last(), len(t.PollErrors()))
	}
}

// WaitFor reads notifications until match returns true, waiting at most
// timeout in total. It returns the match and the notifications skipped
// before it.
func (t *Terminal) WaitFor(timeout time.Duration, what string, match func(Notification) bool) (Notification, []Notification, error) {
	deadline := time.Now().Add(timeout)
	var skipped []Notification
	for {
		n, err := t.Next(time.Until(deadline))
		if err != nil {
			return Notification{}, skipped, fmt.Errorf("waiting for %s: %w; skipped %v", what, err, skipped)
		}
		if match(n) {
			return n, skipped, nil
		}
		skipped = append(skipped, n)
	}
}

// WaitAction waits for a pos.multi_session message with this action (and
// data.uid, unless uid is "").
func (t *Terminal) WaitAction(timeout time.Duration, action, uid string) (Notification, []Notification, error) {
	return t.WaitFor(timeout, fmt.Sprintf("%s uid=%q", action, uid), func(n Notification) bool {
		return n.Kind() == "pos.multi_session" && n.Action() == action && (uid == "" || n.UID() == uid)
	})
}

// Barrier sends a PING and returns every notification that arrives before
// its PONG. Bus ids follow publish order, so anything published for this
// POS before the PING is in the result: use it to check that nothing (else)
// was broadcast. It stops at the first PONG; do not ping this POS
// concurrently.
func (t *Terminal) Barrier(timeout time.Duration) ([]Notification, error) {
	if _, err := t.Ping(); err != nil {
		return nil, err
	}
	_, before, err := t.WaitFor(timeout, "PONG", Notification.IsPong)
	return before, err
}
