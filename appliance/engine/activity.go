package engine

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"possync/appliance"
)

// OnlineWindow is how long a terminal still counts as online after its last
// long-poll ended. An open POS polls again at once after every answer and
// at least every poll hold (50 s by default), so a terminal whose last poll
// ended more than a minute ago has closed, lost the network or frozen.
const OnlineWindow = time.Minute

// terminal is what the engine knows about one POS (one browser tab) in this
// run. Times come from time.Now and carry the monotonic clock, so ages
// computed from them stay right when the wall clock steps (a Pi has no RTC
// and sets its clock from NTP after boot).
type terminal struct {
	session    int64     // multi-session id from its last update request; 0 = unknown
	userID     int64     // user_ID of its last update request; 0 = unknown
	lastUpdate time.Time // last update or ping request; zero = none this run
	lastPoll   time.Time // last poll started or ended; zero = none this run
	polling    int       // polls waiting now
}

// terminals is the activity table. It is a leaf lock of its own, so the
// update and poll paths never wait on Engine.mu or a session for it.
type terminals struct {
	// mu guards the fields that follow. It is a leaf lock.
	mu  sync.Mutex
	m   map[appliance.POSKey]*terminal
	max int // most entries; beyond it new POSes are not tracked (status only)
}

// get returns the entry of k, creating it, or nil when the table holds its
// limit of entries and k is not among them: a poll may name channels of
// made-up POSes, and the status table must not grow without bound.
func (ts *terminals) get(k appliance.POSKey) *terminal {
	t := ts.m[k]
	if t == nil {
		if ts.max > 0 && len(ts.m) >= ts.max {
			return nil
		}
		t = &terminal{}
		ts.m[k] = t
	}
	return t
}

// seen records an update request of a POS. session and user 0 keep what
// is known (a ping carries neither).
func (e *Engine) seen(k appliance.POSKey, session, user int64) {
	now := time.Now()
	e.terms.mu.Lock()
	t := e.terms.get(k)
	if t == nil {
		e.terms.mu.Unlock()
		return
	}
	t.lastUpdate = now
	if session != 0 {
		t.session = session
	}
	if user != 0 {
		t.userID = user
	}
	e.terms.mu.Unlock()
}

// pollKeys returns the POSes a poll speaks for, read from its channels
// ["<db>","pos.multi_session","<pos_id>"] and ["<db>","pos.longpolling","<pos_id>"].
func pollKeys(channels []string) []appliance.POSKey {
	var keys []appliance.POSKey
	for _, c := range channels {
		k, ok := parsePOSChannel(c)
		if ok && !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	return keys
}

// parsePOSChannel reads a channel built by channel(); anything else is not
// a POS channel.
func parsePOSChannel(c string) (appliance.POSKey, bool) {
	var k appliance.POSKey
	rest, ok := strings.CutSuffix(c, `"]`)
	if !ok || !strings.HasPrefix(rest, `["`) {
		return k, false
	}
	i := strings.LastIndex(rest, `,"`)
	if i < 0 {
		return k, false
	}
	id, err := strconv.ParseInt(rest[i+2:], 10, 64)
	if err != nil {
		return k, false
	}
	head := rest[:i]
	var db string
	switch {
	case strings.HasSuffix(head, `","pos.multi_session"`):
		db = strings.TrimSuffix(head, `","pos.multi_session"`)
	case strings.HasSuffix(head, `","pos.longpolling"`):
		db = strings.TrimSuffix(head, `","pos.longpolling"`)
	default:
		return k, false
	}
	db = db[2:] // after `["`
	if len(db) > maxDBNameBytes {
		return k, false // no database has that name: not worth tracking
	}
	if strings.ContainsAny(db, `"\`) {
		return k, false // escaped names: not worth decoding for a status page
	}
	return appliance.POSKey{DB: db, ID: id}, true
}

// pollStarted and pollEnded track the waiting polls of the POSes in keys.
func (e *Engine) pollStarted(keys []appliance.POSKey) { e.pollChanged(keys, +1) }
func (e *Engine) pollEnded(keys []appliance.POSKey)   { e.pollChanged(keys, -1) }

// pollChanged adds delta to the waiting polls of the POSes in keys (never
// below 0) and stamps their last poll.
func (e *Engine) pollChanged(keys []appliance.POSKey, delta int) {
	if len(keys) == 0 {
		return
	}
	now := time.Now()
	e.terms.mu.Lock()
	for _, k := range keys {
		t := e.terms.get(k)
		if t == nil {
			continue
		}
		t.polling = max(t.polling+delta, 0)
		t.lastPoll = now
	}
	e.terms.mu.Unlock()
}

// summary is the part of a session the status page shows, kept in atomics
// so a status request never waits for a session lock (held across fsync).
// Written with the session lock held, after a commit or at load.
type summary struct {
	shown     atomic.Bool  // the session exists in the store
	runID     atomic.Int64 // current run
	lastOrder atomic.Int64 // last order number handed out in this run
	open      atomic.Int64 // draft (open) orders
	orders    atomic.Int64 // orders kept, any state
}

// publishSummary recounts the summary from the session's state. Called
// with s.mu held (or single-threaded during Open); O(orders), so the
// commit path updates the summary incrementally instead.
func (s *session) publishSummary() {
	// Open orders are what a full sync_all of the current run lists
	// (§4.3): drafts of this run. A draft stored in an ended run (written
	// by a till still on it) is on no till of the current run.
	var open int64
	for _, o := range s.orders {
		if o.state == appliance.StateDraft && o.run == s.runID {
			open++
		}
	}
	s.sum.open.Store(open)
	s.sum.orders.Store(int64(len(s.orders)))
	s.sum.runID.Store(s.runID)
	s.sum.lastOrder.Store(s.orderID)
	s.sum.shown.Store(s.persisted)
}

// TerminalStatus is one POS as the status page shows it.
type TerminalStatus struct {
	DB     string
	POSID  int64
	UserID int64 // 0 = not known yet this run
	// LastPoll and LastUpdate are the ages of the last poll (start or end)
	// and of the last update/ping request; -1 = none since the server
	// started. Monotonic: never negative, unaffected by clock steps.
	LastPoll   time.Duration
	LastUpdate time.Duration
	Polling    int  // long-polls waiting now
	Online     bool // a poll is waiting or ended less than the online window ago
}

// SessionStatus is one multi-session as the status page shows it.
type SessionStatus struct {
	Key        appliance.SessionKey
	Run        int64
	LastOrder  int64 // last order number handed out in the current run
	OpenOrders int64 // draft orders
	Terminals  []TerminalStatus
}

// Status is a snapshot for the status page: every multi-session with its
// terminals, terminals not (yet) in any multi-session, and recent warnings.
type Status struct {
	Sessions   []SessionStatus
	Unassigned []TerminalStatus // POSes seen polling or pinging but not in a multi-session
	Warnings   []Warning        // newest first
}

// Status returns the activity snapshot. online is the online window (0 =
// OnlineWindow). It takes Engine.mu and the activity lock briefly, never a
// session lock.
func (e *Engine) Status(online time.Duration) Status {
	if online <= 0 {
		online = OnlineWindow
	}
	now := time.Now()
	var st Status
	byKey := map[appliance.SessionKey]int{}
	e.mu.Lock()
	for k, s := range e.sessions {
		if !s.sum.shown.Load() {
			continue
		}
		byKey[k] = len(st.Sessions)
		st.Sessions = append(st.Sessions, SessionStatus{Key: k, Run: s.sum.runID.Load(),
			LastOrder: s.sum.lastOrder.Load(), OpenOrders: s.sum.open.Load()})
	}
	e.mu.Unlock()

	age := func(t time.Time) time.Duration {
		if t.IsZero() {
			return -1
		}
		return max(now.Sub(t), 0)
	}
	e.terms.mu.Lock()
	for k, t := range e.terms.m {
		ts := TerminalStatus{DB: k.DB, POSID: k.ID, UserID: t.userID, LastPoll: age(t.lastPoll), LastUpdate: age(t.lastUpdate), Polling: t.polling}
		ts.Online = t.polling > 0 || (ts.LastPoll >= 0 && ts.LastPoll < online)
		if i, ok := byKey[appliance.SessionKey{DB: k.DB, ID: t.session}]; ok {
			st.Sessions[i].Terminals = append(st.Sessions[i].Terminals, ts)
		} else if !t.lastPoll.IsZero() || !t.lastUpdate.IsZero() {
			st.Unassigned = append(st.Unassigned, ts)
		}
	}
	e.terms.mu.Unlock()

	slices.SortFunc(st.Sessions, func(a, b SessionStatus) int {
		return cmp.Or(cmp.Compare(a.Key.DB, b.Key.DB), cmp.Compare(a.Key.ID, b.Key.ID))
	})
	byPOS := func(a, b TerminalStatus) int { return cmp.Compare(a.POSID, b.POSID) }
	for _, s := range st.Sessions {
		slices.SortFunc(s.Terminals, byPOS)
	}
	slices.SortFunc(st.Unassigned, byPOS)
	st.Warnings = e.warnings.recent()
	return st
}
