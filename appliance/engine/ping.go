package engine

import (
	"context"
	"encoding/json"
	"math"
	"strconv"
	"time"

	"possync/appliance"
)

// Ping handles /pos_longpolling/update: it publishes the string "PONG" on
// ["<db_name>","pos.longpolling","<pos_id>"] and answers 1 (§3.3). The
// message value is ignored. The notification is committed like any other,
// so bus ids stay durable and increasing.
func (e *Engine) Ping(ctx context.Context, params json.RawMessage) (json.RawMessage, error) {
	p, err := parseObject(params, "params")
	if err != nil {
		return nil, err
	}
	posID, err := p.requiredInt("pos_id", "params")
	if err != nil {
		return nil, err
	}
	db, err := p.requiredString("db_name", "params")
	if err != nil {
		return nil, err
	}
	e.counters.pings.Add(1)
	e.seen(appliance.POSKey{DB: db, ID: posID}, 0, 0)
	bc := &appliance.Broadcast{At: e.opts.Now(), Prefix: []byte(`"PONG"`),
		Targets: []appliance.Target{{Channel: channel(db, "pos.longpolling", posID)}}}
	r := e.bus.reserve(1)
	bc.FirstID = r.first
	start := time.Now()
	err = e.store.Commit(ctx, &appliance.Batch{Broadcasts: []appliance.Broadcast{*bc}})
	e.observeCommit(start, err)
	if err != nil {
		e.bus.finish(r, nil)
		e.storeFailed(db+" POS "+strconv.FormatInt(posID, 10), err)
		return nil, err
	}
	e.bus.finish(r, []*appliance.Broadcast{bc})
	return json.RawMessage("1"), nil
}

// PollParams is a parsed /longpolling/poll call.
type PollParams struct {
	Channels []string // string channels only; others are ignored (§9.3-1)
	Last     uint64
}

// ParsePoll reads the params of /longpolling/poll: channels (list; non-string
// items ignored), last (integer; negative counts as 0, a value beyond any id
// as "beyond the newest"), options (ignored).
func (e *Engine) ParsePoll(params json.RawMessage) (PollParams, error) {
	var pp PollParams
	p, err := parseObject(params, "params")
	if err != nil {
		return pp, err
	}
	chRaw := p.field("channels")
	if chRaw == nil {
		return pp, invalid("params.channels is missing")
	}
	if kind(chRaw) != "array" {
		return pp, invalid("params.channels must be a list of channel strings, got %s", kind(chRaw))
	}
	var items []json.RawMessage
	if err := json.Unmarshal(chRaw, &items); err != nil {
		return pp, invalid("params.channels is not valid JSON: %v", err)
	}
	seen := make(map[string]bool, len(items))
	for _, it := range items {
		if kind(it) != "string" {
			continue
		}
		var s string
		if json.Unmarshal(it, &s) != nil || seen[s] {
			continue
		}
		seen[s] = true
		pp.Channels = append(pp.Channels, s)
	}
	if len(pp.Channels) > e.opts.MaxPollChannels {
		return pp, invalid("params.channels has %d channels; at most %d are allowed", len(pp.Channels), e.opts.MaxPollChannels)
	}
	lastRaw := p.field("last")
	if lastRaw == nil {
		return pp, nil // Odoo's default
	}
	if kind(lastRaw) != "number" {
		return pp, invalid("params.last must be an integer notification id, got %s", kind(lastRaw))
	}
	pp.Last = parseLast(string(lastRaw))
	return pp, nil
}

// parseLast maps a JSON number to a cursor: negative → 0, beyond uint64 →
// MaxUint64 (treated as "beyond the newest id", i.e. like 0).
func parseLast(s string) uint64 {
	var f float64
	if err := json.Unmarshal([]byte(s), &f); err != nil || f <= 0 || math.IsNaN(f) {
		return 0
	}
	if f >= math.MaxUint64 {
		return math.MaxUint64
	}
	var n uint64
	if err := json.Unmarshal([]byte(s), &n); err == nil {
		return n
	}
	return uint64(f)
}

// Poll waits for notifications as /longpolling/poll does (§3.1). While it
// waits, the POSes named by its channels count as polling (status page).
func (e *Engine) Poll(ctx context.Context, pp PollParams, hold, replay time.Duration) []Notification {
	keys := pollKeys(pp.Channels)
	e.pollStarted(keys)
	out, pub := e.bus.poll(ctx, PollRequest{Channels: pp.Channels, Last: pp.Last, Hold: hold, Replay: replay})
	e.pollEnded(keys)
	if !pub.IsZero() && len(out) > 0 {
		if b := e.observer.Load(); b != nil {
			b.o.Delivered(time.Since(pub), len(out))
		}
	}
	return out
}
