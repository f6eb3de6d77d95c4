package engine

import (
	"encoding/json"
	"fmt"
	"slices"

	"possync/appliance"
)

// Default bounds of the state the engine tracks (Options.MaxDatabases…):
// generous for one shop, small enough that a LAN client sending made-up
// names cannot exhaust a 1 GB Raspberry Pi.
const (
	DefaultMaxDatabases     = 16
	DefaultMaxMultiSessions = 256
	DefaultMaxTerminals     = 1024
)

// Limits is how much state the engine tracks and may track, for the status
// page and /metrics.
type Limits struct {
	Databases, MaxDatabases         int // databases with a multi-session
	MultiSessions, MaxMultiSessions int
	Terminals, MaxTerminals         int // POS rows (a POS that has synced)
	Activity                        int // POSes seen polling or pinging this run (bounded by MaxTerminals)
}

// Limits returns the counts and bounds. It takes Engine.mu and the
// activity lock briefly, never a session lock.
func (e *Engine) Limits() Limits {
	l := Limits{MaxDatabases: e.opts.MaxDatabases, MaxMultiSessions: e.opts.MaxMultiSessions, MaxTerminals: e.opts.MaxTerminals}
	e.mu.Lock()
	l.Databases, l.MultiSessions, l.Terminals = len(e.dbs), len(e.sessions), len(e.posOwner)
	e.mu.Unlock()
	e.terms.mu.Lock()
	l.Activity = len(e.terms.m)
	e.terms.mu.Unlock()
	return l
}

// Databases returns the names of the databases the engine tracks (with a
// multi-session), sorted: the status page lists them so the owner can copy
// the right one into security.allowed_databases.
func (e *Engine) Databases() []string {
	e.mu.Lock()
	names := make([]string, 0, len(e.dbs))
	for db := range e.dbs {
		names = append(names, db)
	}
	e.mu.Unlock()
	slices.Sort(names)
	return names
}

// AllowedDatabases returns security.allowed_databases (nil = any).
func (e *Engine) AllowedDatabases() []string {
	if len(e.opts.AllowedDatabases) == 0 {
		return nil
	}
	return slices.Clone(e.opts.AllowedDatabases)
}

// checkDB refuses a database not in Options.AllowedDatabases (when set).
func (e *Engine) checkDB(db string) error {
	if e.allowedDBs == nil || e.allowedDBs[db] {
		return nil
	}
	return appliance.Errorf(appliance.EFORBIDDEN, "database %q is not in security.allowed_databases", db).WithValue(db)
}

// checkChannels refuses a poll naming a channel of a database that is not
// allowed. Every channel the engine publishes on is a JSON array whose first
// element is the database name; other channels never receive anything and
// are not checked.
func (e *Engine) checkChannels(channels []string) error {
	if e.allowedDBs == nil {
		return nil
	}
	for _, c := range channels {
		var head []json.RawMessage
		if json.Unmarshal([]byte(c), &head) != nil || len(head) == 0 {
			continue
		}
		var db string
		if json.Unmarshal(head[0], &db) != nil {
			continue
		}
		if err := e.checkDB(db); err != nil {
			return appliance.Errorf(appliance.EFORBIDDEN, "params.channels names channel %s: database %q is not in security.allowed_databases", c, db).WithValue(db)
		}
	}
	return nil
}

// admitSessionLocked reports whether a new multi-session key may be
// created. Called with e.mu held.
func (e *Engine) admitSessionLocked(key appliance.SessionKey) error {
	if _, ok := e.sessions[key]; ok {
		return nil
	}
	if e.dbs[key.DB] == 0 && len(e.dbs) >= e.opts.MaxDatabases {
		return appliance.Errorf(appliance.ELIMIT, "database %q refused: this Sync Server already tracks its limit of %d databases (security.max_databases)", key.DB, e.opts.MaxDatabases).WithValue(key.DB)
	}
	if len(e.sessions) >= e.opts.MaxMultiSessions {
		return appliance.Errorf(appliance.ELIMIT, "multi-session %d of database %q refused: this Sync Server already tracks its limit of %d multi-sessions (security.max_multi_sessions)", key.ID, key.DB, e.opts.MaxMultiSessions).WithValue(fmt.Sprintf("%s/%d", key.DB, key.ID))
	}
	return nil
}

// admitDB refuses a ping for a database the engine does not track when it
// already tracks its limit of databases.
func (e *Engine) admitDB(db string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.dbs[db] == 0 && len(e.dbs) >= e.opts.MaxDatabases {
		return appliance.Errorf(appliance.ELIMIT, "database %q refused: this Sync Server already tracks its limit of %d databases (security.max_databases)", db, e.opts.MaxDatabases).WithValue(db)
	}
	return nil
}

// reservePOS reserves n new POS rows of db against MaxTerminals before a
// commit; release undoes it once the commit is done (successful or not).
func (e *Engine) reservePOS(db string, ids []int64) (release func(), err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, id := range ids {
		if _, ok := e.posOwner[appliance.POSKey{DB: db, ID: id}]; !ok {
			n++
		}
	}
	if n == 0 {
		return func() {}, nil
	}
	if len(e.posOwner)+e.posPending+n > e.opts.MaxTerminals {
		return nil, appliance.Errorf(appliance.ELIMIT, "POS %d of database %q refused: this Sync Server already tracks its limit of %d terminals (security.max_terminals)", ids[0], db, e.opts.MaxTerminals).WithValue(fmt.Sprintf("%s/POS %d", db, ids[0]))
	}
	e.posPending += n
	return func() {
		e.mu.Lock()
		e.posPending -= n
		e.mu.Unlock()
	}, nil
}
