package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"possync/appliance"
)

// session is the in-memory state of one multi-session. Every field below mu
// is read and written only with mu held.
type session struct {
	key appliance.SessionKey

	// mu guards the fields that follow.
	mu        sync.Mutex
	persisted bool // the session record exists in the store
	orderID   int64
	runID     int64
	pos       map[int64]*posState    // POS rows owned by this multi-session
	orders    map[string]*orderState // by uid

	sum summary // status-page view, readable without mu
}

type posState struct {
	messageID int64
	userID    int64
}

type orderState struct {
	rev     int64
	seq     int64  // the shared number the server gave; 0 = read it from msg
	nonce   string // raw JSON
	state   appliance.OrderState
	run     int64
	updated time.Time
	msg     []byte            // last accepted message; nil for deleted orders not loaded
	lines   map[string]object // msg's lines by uid, kept to mark is_changed; nil = parse msg
}

// number returns the shared number the server gave the order: the
// sequence_number of its stored message (which the server always writes),
// read once after a restart. It is 0 if the message has none.
func (o *orderState) number() int64 {
	if o.seq > 0 || o.msg == nil {
		return o.seq
	}
	var m struct {
		Data struct {
			Seq json.RawMessage `json:"sequence_number"`
		} `json:"data"`
	}
	if json.Unmarshal(o.msg, &m) != nil {
		return 0
	}
	if n, err := intValue(m.Data.Seq, "sequence_number"); err == nil && n > 0 {
		o.seq = n
	}
	return o.seq
}

func newSession(key appliance.SessionKey) *session {
	return &session{key: key, pos: make(map[int64]*posState), orders: make(map[string]*orderState)}
}

func orderFromRecord(r appliance.OrderRecord) *orderState {
	o := &orderState{rev: r.Revision, nonce: r.Nonce, state: r.State, run: r.Run, updated: r.Updated, msg: r.Message}
	if o.state == appliance.StateDeleted {
		o.msg = nil // loaded on demand; deleted orders are never rewritten
	}
	return o
}

// txn is one operation on a locked session: it reads through to the
// session, writes to working copies, and applies them only after the store
// has committed.
type txn struct {
	e   *Engine
	s   *session
	now time.Time

	orderID, runID int64
	sessionDirty   bool
	pos            map[int64]posState
	from           *session // session the moved POS comes from (locked), or nil
	movedPOS       int64
	orders         map[string]*orderState
	bcasts         []*appliance.Broadcast
}

func (e *Engine) newTxn(s, from *session) *txn {
	return &txn{e: e, s: s, now: e.opts.Now(), orderID: s.orderID, runID: s.runID, from: from,
		pos: make(map[int64]posState), orders: make(map[string]*orderState)}
}

func (t *txn) order(uid string) *orderState {
	if o, ok := t.orders[uid]; ok {
		return o
	}
	return t.s.orders[uid]
}

func (t *txn) setOrder(uid string, o *orderState) { t.orders[uid] = o }

func (t *txn) setOrderID(n int64) {
	if n != t.orderID {
		t.orderID, t.sessionDirty = n, true
	}
}

func (t *txn) posRow(id int64) (posState, bool) {
	if p, ok := t.pos[id]; ok {
		return p, true
	}
	if p, ok := t.s.pos[id]; ok {
		return *p, true
	}
	return posState{}, false
}

// posIDs returns the POS rows of the session, ascending.
func (t *txn) posIDs() []int64 {
	ids := make([]int64, 0, len(t.s.pos)+len(t.pos))
	for id := range t.s.pos {
		ids = append(ids, id)
	}
	for id := range t.pos {
		if _, ok := t.s.pos[id]; !ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// beginRun applies a run_ID transition (protocol.md §5.4, decision 6): a
// higher run_ID sets the new run, marks draft orders of older runs unpaid
// and always restarts numbering at 0.
func (t *txn) beginRun(run int64) {
	if run <= t.runID {
		return
	}
	t.runID, t.sessionDirty = run, true
	t.setOrderID(0)
	t.sessionDirty = true
	for uid, o := range t.s.orders {
		if o.state == appliance.StateDraft && o.run < run {
			c := *o
			c.state, c.updated = appliance.StateUnpaid, t.now
			t.setOrder(uid, &c)
		}
	}
}

// multiSessionChannel is the bus channel of a POS, exactly as the client
// builds it with JSON.stringify([db, "pos.multi_session", String(pos_id)]).
func multiSessionChannel(db string, posID int64) string {
	return channel(db, "pos.multi_session", posID)
}

func channel(db, name string, posID int64) string {
	b := make([]byte, 0, len(db)+len(name)+32)
	b = append(b, '[')
	b = appendString(b, db)
	b = append(b, ',')
	b = appendString(b, name)
	b = append(b, ',', '"')
	b = strconv.AppendInt(b, posID, 10)
	b = append(b, '"', ']')
	return string(b)
}

// broadcast queues msg (whose data object is data) for every POS row of
// the session, each copy with that POS's next message_ID (§5.3).
func (t *txn) broadcast(msg, data object) {
	ids := t.posIDs()
	if len(ids) == 0 {
		return
	}
	targets := make([]appliance.Target, len(ids))
	for i, id := range ids {
		p, _ := t.posRow(id)
		p.messageID++
		t.pos[id] = p
		targets[i] = appliance.Target{Channel: multiSessionChannel(t.s.key.DB, id), MessageID: p.messageID}
	}
	t.push(msg, data, targets)
}

// push queues msg for the given targets with data.message_ID templated.
func (t *txn) push(msg, data object, targets []appliance.Target) {
	prefix, suffix := template(msg, data)
	t.bcasts = append(t.bcasts, &appliance.Broadcast{At: t.now, Templated: true, Prefix: prefix, Suffix: suffix, Targets: targets})
}

// template renders msg with data as its "data" member and a hole for
// data.message_ID at the end: message = prefix + message_ID + suffix.
func template(msg, data object) (prefix, suffix []byte) {
	env := make(object, len(msg))
	for k, v := range msg {
		if k != "data" {
			env[k] = v
		}
	}
	d := make(object, len(data))
	for k, v := range data {
		if k != "message_ID" {
			d[k] = v
		}
	}
	envB := env.bytes()
	dataB := d.bytes()
	prefix = make([]byte, 0, len(envB)+len(dataB)+24)
	prefix = append(prefix, envB[:len(envB)-1]...)
	if len(env) > 0 {
		prefix = append(prefix, ',')
	}
	prefix = append(prefix, `"data":`...)
	prefix = append(prefix, dataB[:len(dataB)-1]...)
	if len(d) > 0 {
		prefix = append(prefix, ',')
	}
	prefix = append(prefix, `"message_ID":`...)
	return prefix, []byte("}}")
}

// commit makes the transaction durable, applies it to memory and publishes
// its broadcasts, in that order.
func (t *txn) commit(ctx context.Context) error {
	var b appliance.Batch
	key := t.s.key
	if t.sessionDirty || !t.s.persisted {
		b.Sessions = append(b.Sessions, appliance.SessionRecord{Key: key, OrderID: t.orderID, RunID: t.runID})
	}
	for id, p := range t.pos {
		b.POS = append(b.POS, appliance.POSRecord{Key: appliance.POSKey{DB: key.DB, ID: id}, Session: key.ID, MessageID: p.messageID, UserID: p.userID})
	}
	for uid, o := range t.orders {
		if o.msg == nil {
			return fmt.Errorf("commit order %q of %s/%d: no message in memory", uid, key.DB, key.ID)
		}
		b.Orders = append(b.Orders, appliance.OrderRecord{Key: appliance.OrderKey{Session: key, UID: uid},
			Revision: o.rev, Nonce: o.nonce, State: o.state, Run: o.run, Updated: o.updated, Message: o.msg})
	}
	if len(b.POS) > 0 {
		ids := make([]int64, len(b.POS))
		for i, p := range b.POS {
			ids[i] = p.Key.ID
		}
		release, err := t.e.reservePOS(key.DB, ids)
		if err != nil {
			return err
		}
		defer release()
	}
	n := 0
	for _, bc := range t.bcasts {
		n += len(bc.Targets)
	}
	r := t.e.bus.reserve(n)
	next := r.first
	for _, bc := range t.bcasts {
		bc.FirstID = next
		next += uint64(len(bc.Targets))
		b.Broadcasts = append(b.Broadcasts, *bc)
	}
	start := time.Now()
	err := t.e.store.Commit(ctx, &b)
	t.e.observeCommit(start, err)
	if err != nil {
		t.e.bus.finish(r, nil)
		t.e.storeFailed(key.DB+"/"+strconv.FormatInt(key.ID, 10), err)
		return fmt.Errorf("commit %s/%d: %w", key.DB, key.ID, err)
	}

	s := t.s
	s.persisted = true
	newRun := s.runID != t.runID
	s.orderID, s.runID = t.orderID, t.runID
	// Open orders (the status page) are this run's drafts; counted by
	// difference, or recounted when the run changed.
	isOpen := func(o *orderState) bool { return o.state == appliance.StateDraft && o.run == s.runID }
	var open int64
	for uid, o := range t.orders {
		if prev, ok := s.orders[uid]; ok && isOpen(prev) {
			open--
		}
		if isOpen(o) {
			open++
		}
		if o.state == appliance.StateDeleted && o.msg != nil {
			// A paid or removed order is never rewritten: its message and
			// lines stay on disk only (read back by orderMessage), as after
			// a restart, so a busy day's paid orders do not fill memory.
			o.number()
			o.msg, o.lines = nil, nil
		}
		s.orders[uid] = o
	}
	if newRun {
		s.publishSummary()
	} else {
		s.sum.open.Add(open)
		s.sum.orders.Store(int64(len(s.orders)))
		s.sum.lastOrder.Store(s.orderID)
		s.sum.shown.Store(true)
	}
	if t.from != nil {
		delete(t.from.pos, t.movedPOS)
	}
	newOwners := make([]int64, 0, len(t.pos))
	for id, p := range t.pos {
		if cur, ok := s.pos[id]; ok {
			*cur = p
		} else {
			s.pos[id] = &posState{messageID: p.messageID, userID: p.userID}
			newOwners = append(newOwners, id)
		}
	}
	if len(newOwners) > 0 {
		t.e.mu.Lock()
		for _, id := range newOwners {
			t.e.posOwner[appliance.POSKey{DB: key.DB, ID: id}] = key.ID
		}
		t.e.mu.Unlock()
	}
	t.e.bus.finish(r, t.bcasts)
	return nil
}
