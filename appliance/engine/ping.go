package engine

import (
	"context"
	"encoding/json"
	"math"
	"strconv"
	"time"

	"possync/appliance"
	"possync/appliance/internal/jsonx"
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
	db, err := p.dbName("db_name", "params")
	if err != nil {
		return nil, err
	}
	if err := e.checkDB(db); err != nil {
		return nil, err
	}
	if err := e.admitDB(db); err != nil {
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
// items ignored), last (integer; negative counts as 0, a value beyond
// uint64 as MaxUint64, a cursor from the future handled by Poll), options
// (ignored).
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
	// chRaw is a member of params, which parseObject validated: split it
	// without validating it again (jsonsplit.go).
	items, ok := splitArray(chRaw)
	if !ok {
		if err := json.Unmarshal(chRaw, &items); err != nil {
			return pp, invalid("params.channels is not valid JSON: %s", jsonx.ErrorAt(err, "params.channels"))
		}
	}
	seen := make(map[string]bool, len(items))
	for _, it := range items {
		if kind(it) != "string" {
			continue
		}
		s, ok := memberKey(it)
		if !ok || seen[s] {
			continue
		}
		seen[s] = true
		pp.Channels = append(pp.Channels, s)
	}
	if len(pp.Channels) > e.opts.MaxPollChannels {
		return pp, invalid("params.channels has %d channels; at most %d are allowed", len(pp.Channels), e.opts.MaxPollChannels)
	}
	if err := e.checkChannels(pp.Channels); err != nil {
		return pp, err
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
// MaxUint64 (above MaxJumpCursor: Poll answers it from the newest id).
func parseLast(s string) uint64 {
	// s is a JSON number (kind checked it, parseObject validated it); as
	// encoding/json, a float64 out of range is an error.
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 || math.IsNaN(f) {
		return 0
	}
	if f >= math.MaxUint64 {
		return math.MaxUint64
	}
	if n, err := strconv.ParseUint(s, 10, 64); err == nil {
		return n
	}
	return uint64(f)
}

// MaxJumpCursor bounds the cursors the bus id sequence jumps past. Odoo's
// bus.bus id is a PostgreSQL serial (below 2^31), so a genuine cursor from
// the main Odoo's bus, or from an earlier possync box, is far below it; a
// broken or hostile client cannot push ids near JavaScript's 2^53 limit of
// exact integers, where the client's max(ids) would stop working, nor
// exhaust the id space. A poll with a cursor at or above it is answered as
// if its cursor were the newest id, without a jump.
const MaxJumpCursor uint64 = 1 << 40

// Poll waits for notifications as /longpolling/poll does (§3.1); see poll
// for a cursor from the future. While it waits, the POSes named by its
// channels count as polling (status page).
func (e *Engine) Poll(ctx context.Context, pp PollParams, hold, replay time.Duration) []Notification {
	keys := pollKeys(pp.Channels)
	e.pollStarted(keys)
	out, pub := e.poll(ctx, pp, hold, replay)
	e.pollEnded(keys)
	if !pub.IsZero() && len(out) > 0 {
		if b := e.observer.Load(); b != nil {
			b.o.Delivered(time.Since(pub), len(out))
		}
	}
	return out
}

// poll waits for notifications as /longpolling/poll does (§3.1), with
// possync's rule for a cursor from the future (README "How possync reads
// the protocol"): when pp.Last is at or above every id ever reserved, the
// id sequence first jumps durably past it (up to MaxJumpCursor), so the
// next notifications carry ids above the client's cursor and the client's
// max(ids) moves with them; this poll then answers only what becomes
// visible after the newest id at its arrival. Nothing old is replayed, so
// each notification reaches the client at most once; what it missed
// before it arrived, it recovers like any lost notification, through the
// message_ID gap check and sync_all (§6.1, §4.3).
func (e *Engine) poll(ctx context.Context, pp PollParams, hold, replay time.Duration) ([]Notification, time.Time) {
	req := PollRequest{Channels: pp.Channels, Last: pp.Last, Hold: hold, Replay: replay}
	if pp.Last == 0 {
		return e.bus.poll(ctx, req, 0, true)
	}
	r, after, future := e.bus.jump(pp.Last, MaxJumpCursor)
	if !future {
		return e.bus.poll(ctx, req, pp.Last, false)
	}
	if r == nil {
		e.log.Debug("poll cursor beyond the jump limit; answering from the newest id", "last", pp.Last, "newest", after)
		return e.bus.poll(ctx, req, after, false)
	}
	err := e.store.Commit(ctx, &appliance.Batch{BusIDFloor: pp.Last})
	e.bus.finish(r, nil)
	if err != nil {
		// The ids stay skipped in memory; nothing above the stored
		// LastBusID becomes visible without its own durable commit.
		e.storeFailed("bus id jump", err)
		e.log.Warn("bus id jump not stored", "last", pp.Last, "err", err)
	} else {
		e.counters.jumps.Add(1)
		e.log.Info("bus ids jumped past a client's cursor", "from", r.first, "to", pp.Last+1, "newest", after)
	}
	// Notifications committing below the jump become visible in id order
	// within a commit's time; wait for them so this poll delivers them.
	t := time.NewTimer(hold)
	select {
	case <-r.popped:
	case <-t.C:
	case <-ctx.Done():
	}
	t.Stop()
	return e.bus.poll(ctx, req, after, false)
}
