package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"possync/appliance"
)

// Options configures an Engine. Zero values take the defaults noted.
type Options struct {
	Logger       *slog.Logger
	BusRetention time.Duration // notifications kept at least this long (default 10m)
	// BusMaxRetainedBytes caps the estimated memory of retained
	// notifications; beyond it the oldest go even within BusRetention
	// (default 64 MiB, <0 = no cap).
	BusMaxRetainedBytes int
	OrderRetention      time.Duration // deleted/unpaid orders of old runs purged after this (default 168h)
	PurgeInterval       time.Duration // retention period; 0 = default 1m, <0 = off (tests)
	Now                 func() time.Time
	MaxPollChannels     int // channels accepted in one poll (default 256)
	// MaxDatabases, MaxMultiSessions and MaxTerminals bound the state the
	// engine tracks (0 = DefaultMax…): a request that would create one more
	// is refused with an ELIMIT error naming the limit, and nothing is
	// stored. State loaded at Open is kept even beyond them.
	MaxDatabases     int
	MaxMultiSessions int
	MaxTerminals     int
	// AllowedDatabases lists the database names served (empty = any);
	// updates, pings and polls naming another get an EFORBIDDEN error.
	AllowedDatabases []string
}

// Engine is the Sync Server's protocol logic. Create with New, then Open.
type Engine struct {
	store appliance.Store
	opts  Options
	log   *slog.Logger
	bus   *Bus

	// mu guards the fields that follow. Session locks may be held while
	// taking mu, never the reverse.
	mu         sync.Mutex
	sessions   map[appliance.SessionKey]*session
	dbs        map[string]int             // database → its sessions in e.sessions
	posOwner   map[appliance.POSKey]int64 // POS → multi-session id owning its row
	posPending int                        // new POS rows reserved by commits in flight

	allowedDBs map[string]bool // nil = any database

	terms    terminals // per-POS activity for the status page (own leaf lock)
	warnings warnings  // recent warnings (own leaf lock)
	observerField
	counters counters
	stop     context.CancelFunc
	done     chan struct{}
	closed   atomic.Bool
}

type counters struct {
	requests, accepted, revisionErrors, duplicates, syncAll, removes, relays, pings, jumps, storeErrors atomic.Uint64
}

// New returns an Engine on store. It does no I/O.
func New(store appliance.Store, opts Options) *Engine {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.BusRetention <= 0 {
		opts.BusRetention = 10 * time.Minute
	}
	if opts.OrderRetention <= 0 {
		opts.OrderRetention = 7 * 24 * time.Hour
	}
	if opts.BusMaxRetainedBytes == 0 {
		opts.BusMaxRetainedBytes = 64 << 20
	}
	if opts.PurgeInterval == 0 {
		opts.PurgeInterval = time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxPollChannels <= 0 {
		opts.MaxPollChannels = 256
	}
	opts.MaxDatabases = cmp.Or(max(opts.MaxDatabases, 0), DefaultMaxDatabases)
	opts.MaxMultiSessions = cmp.Or(max(opts.MaxMultiSessions, 0), DefaultMaxMultiSessions)
	opts.MaxTerminals = cmp.Or(max(opts.MaxTerminals, 0), DefaultMaxTerminals)
	var allowed map[string]bool
	if len(opts.AllowedDatabases) > 0 {
		allowed = make(map[string]bool, len(opts.AllowedDatabases))
		for _, db := range opts.AllowedDatabases {
			allowed[db] = true
		}
	}
	return &Engine{
		allowedDBs: allowed,
		dbs:        make(map[string]int),
		store:      store,
		opts:       opts,
		log:        opts.Logger.With("component", "engine"),
		sessions:   make(map[appliance.SessionKey]*session),
		posOwner:   make(map[appliance.POSKey]int64),
		terms:      terminals{m: make(map[appliance.POSKey]*terminal), max: opts.MaxTerminals},
	}
}

// Open loads the durable state and starts the retention loop.
func (e *Engine) Open(ctx context.Context) error {
	snap, err := e.store.Load(ctx)
	if err != nil {
		return fmt.Errorf("load state: %w", err)
	}
	for _, r := range snap.Sessions {
		s := e.sessionLocked(r.Key)
		s.orderID, s.runID, s.persisted = r.OrderID, r.RunID, true
	}
	for _, r := range snap.POS {
		s := e.sessionLocked(appliance.SessionKey{DB: r.Key.DB, ID: r.Session})
		s.pos[r.Key.ID] = &posState{messageID: r.MessageID, userID: r.UserID}
		e.posOwner[r.Key] = r.Session
		e.terms.m[r.Key] = &terminal{session: r.Session, userID: r.UserID}
	}
	now := e.opts.Now()
	maxOrderAge := e.opts.OrderRetention - min(e.opts.OrderRetention, orderRestartKeep)
	for _, r := range snap.Orders {
		s := e.sessionLocked(r.Key.Session)
		o := orderFromRecord(r)
		// r.Updated is an earlier run's wall clock: count its age from
		// this start within bounds (clock.go), so a clock step neither
		// purges the order early nor keeps it forever.
		o.updated = now.Add(-storedAge(now, r.Updated, maxOrderAge))
		s.orders[r.Key.UID] = o
	}
	for _, s := range e.sessions {
		s.publishSummary()
	}
	e.bus = newBus(snap.LastBusID, e.opts.Now)
	e.bus.load(snap.Broadcasts, e.opts.BusRetention)
	e.log.Info("state loaded", "sessions", len(snap.Sessions), "pos", len(snap.POS),
		"orders", len(snap.Orders), "broadcasts", len(snap.Broadcasts), "last_bus_id", snap.LastBusID)

	loopCtx, cancel := context.WithCancel(context.Background())
	e.stop, e.done = cancel, make(chan struct{})
	go func() {
		defer close(e.done)
		if e.opts.PurgeInterval > 0 {
			e.retentionLoop(loopCtx)
		}
	}()
	return nil
}

// sessionLocked returns the session for key, creating it in memory. Called
// during Open (single-threaded) or with e.mu held.
func (e *Engine) sessionLocked(key appliance.SessionKey) *session {
	s := e.sessions[key]
	if s == nil {
		s = newSession(key)
		e.sessions[key] = s
		e.dbs[key.DB]++
	}
	return s
}

// Bus returns the engine's bus (valid after Open).
func (e *Engine) Bus() *Bus { return e.bus }

// StopPolls wakes every waiting poll and makes later polls answer at once:
// the first step of a shutdown, so the HTTP server can drain.
func (e *Engine) StopPolls() {
	if e.bus != nil {
		e.bus.close()
	}
}

// Close stops the retention loop and wakes every poll. It does not close
// the store (the caller owns it). Safe to call more than once.
func (e *Engine) Close() error {
	if e.closed.Swap(true) {
		return nil
	}
	e.StopPolls()
	if e.stop != nil {
		e.stop()
		<-e.done
	}
	return nil
}

// Stats is a snapshot of the engine's counters, for the status page and
// metrics.
type Stats struct {
	Sessions       int
	Orders         int // orders known (all states)
	DraftOrders    int
	Requests       uint64 // update requests handled
	Accepted       uint64 // update_order accepted
	RevisionErrors uint64
	Duplicates     uint64
	SyncAll        uint64
	Removes        uint64
	Relays         uint64
	Pings          uint64
	BusJumps       uint64 // times the bus id sequence jumped past a client's cursor
	StoreErrors    uint64
	Bus            BusStats
}

// Stats returns a snapshot of the counters. It takes Engine.mu and the bus
// lock briefly, never a session lock.
func (e *Engine) Stats() Stats {
	st := Stats{
		Requests:       e.counters.requests.Load(),
		Accepted:       e.counters.accepted.Load(),
		RevisionErrors: e.counters.revisionErrors.Load(),
		Duplicates:     e.counters.duplicates.Load(),
		SyncAll:        e.counters.syncAll.Load(),
		Removes:        e.counters.removes.Load(),
		Relays:         e.counters.relays.Load(),
		Pings:          e.counters.pings.Load(),
		BusJumps:       e.counters.jumps.Load(),
		StoreErrors:    e.counters.storeErrors.Load(),
	}
	// The counts come from the sessions' summaries (atomics), so Stats
	// never waits for a session lock held across a commit's fsync.
	e.mu.Lock()
	st.Sessions = len(e.sessions)
	for _, s := range e.sessions {
		st.Orders += int(s.sum.orders.Load())
		st.DraftOrders += int(s.sum.open.Load())
	}
	e.mu.Unlock()
	if e.bus != nil {
		st.Bus = e.bus.stats()
	}
	return st
}

// lockSessions locks the session of key and, when movePOS names a POS whose
// row belongs to another multi-session of the same database, that session
// too (in key order, so two moves cannot deadlock). It returns the locked
// session, the POS's current owner (nil if none or the same) and an unlock
// function, or an ELIMIT error when key is new and the engine tracks its
// limit of databases or multi-sessions (nothing is created then).
func (e *Engine) lockSessions(key appliance.SessionKey, movePOS *int64) (s, from *session, unlock func(), err error) {
	for {
		e.mu.Lock()
		if err := e.admitSessionLocked(key); err != nil {
			e.mu.Unlock()
			return nil, nil, nil, err
		}
		s = e.sessionLocked(key)
		from = nil
		var owner int64
		var owned bool
		if movePOS != nil {
			owner, owned = e.posOwner[appliance.POSKey{DB: key.DB, ID: *movePOS}]
			if owned && owner != key.ID {
				from = e.sessionLocked(appliance.SessionKey{DB: key.DB, ID: owner})
			}
		}
		e.mu.Unlock()

		if from == nil {
			s.mu.Lock()
		} else if cmp.Compare(from.key.ID, s.key.ID) < 0 {
			from.mu.Lock()
			s.mu.Lock()
		} else {
			s.mu.Lock()
			from.mu.Lock()
		}
		// Re-check ownership now that we hold the locks.
		stable := true
		if movePOS != nil {
			e.mu.Lock()
			o2, owned2 := e.posOwner[appliance.POSKey{DB: key.DB, ID: *movePOS}]
			e.mu.Unlock()
			stable = o2 == owner && owned2 == owned
		}
		if stable {
			return s, from, func() {
				s.mu.Unlock()
				if from != nil {
					from.mu.Unlock()
				}
			}, nil
		}
		s.mu.Unlock()
		if from != nil {
			from.mu.Unlock()
		}
	}
}

// Health reports whether the engine can still take its locks within d: a
// stuck engine (deadlock, a store write that never returns) fails it, so the
// systemd watchdog restarts the process.
func (e *Engine) Health(d time.Duration) error {
	if e.closed.Load() {
		return appliance.ErrClosed
	}
	done := make(chan struct{})
	go func() {
		e.mu.Lock()
		sessions := make([]*session, 0, len(e.sessions))
		for _, s := range e.sessions {
			sessions = append(sessions, s)
		}
		e.mu.Unlock()
		for _, s := range sessions {
			s.mu.Lock()
			//lint:ignore SA2001 an empty critical section is the probe
			s.mu.Unlock()
		}
		if e.bus != nil {
			e.bus.Newest()
		}
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-time.After(d):
		return fmt.Errorf("engine stalled: locks not free within %v", d)
	}
}

// ProbeWrite commits a small record of the store's own (not an order,
// session or notification) and returns nil once it is durable: the proof
// that writes land, for GET /healthz?write=1. A store that cannot probe
// answers an error saying so.
func (e *Engine) ProbeWrite(ctx context.Context) error {
	if e.closed.Load() {
		return appliance.ErrClosed
	}
	p, ok := e.store.(appliance.WriteProber)
	if !ok {
		return errors.New("the store cannot probe writes")
	}
	if err := p.ProbeWrite(ctx); err != nil {
		e.storeFailed("health write probe", err)
		return err
	}
	return nil
}

// StoreHealth reports a condition under which the store cannot take writes
// (its file system is full or read-only), for /healthz and the status
// page; nil when there is none or the store cannot tell. Unlike Health, a
// failure here is not fixed by a restart.
func (e *Engine) StoreHealth() error {
	h, ok := e.store.(appliance.HealthReporter)
	if !ok {
		return nil
	}
	return h.Health()
}
