package engine

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"possync/appliance"
	"possync/storage/memstore"
)

// TestBoundsUnderConcurrency: many POSes and multi-sessions created at once
// never overshoot the bounds (the POS reservation and the session admission
// are atomic with the counts), each refusal is an ELIMIT error naming its
// key, and a restart loads exactly what was admitted.
func TestBoundsUnderConcurrency(t *testing.T) {
	store := memstore.New()
	opts := Options{MaxDatabases: 2, MaxMultiSessions: 4, MaxTerminals: 10, AllowedDatabases: nil}
	e := openEngine(t, store, opts)
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Go(func() {
			db := fmt.Sprintf("db%d", i%3)
			ms := int64(i % 5)
			params := mustJSON(t, map[string]any{"multi_session_id": ms, "dbname": db, "user_ID": 1, "message": syncAllMsg(int64(i), 1, true)})
			if _, err := e.Update(context.Background(), params); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if appliance.ErrorCode(err) != appliance.ELIMIT {
			t.Errorf("refusal %v has code %q, want %q", err, appliance.ErrorCode(err), appliance.ELIMIT)
		}
	}
	l := e.Limits()
	if l.Databases > 2 || l.MultiSessions > 4 || l.Terminals > 10 {
		t.Errorf("Limits() = %+v: beyond the bounds 2/4/10", l)
	}
	if l.Terminals != 10 {
		t.Errorf("terminals = %d, want exactly 10 (200 POSes asked)", l.Terminals)
	}
	e.Close()
	e2 := openEngine(t, store, opts)
	if got := e2.Limits(); got.Terminals != l.Terminals {
		t.Errorf("after restart %d terminals, before %d", got.Terminals, l.Terminals)
	}
}

// TestAllowedDatabases: updates, pings and polls of another database are
// EFORBIDDEN errors naming it; a poll channel that is not a database
// channel is not checked.
func TestAllowedDatabases(t *testing.T) {
	e := openEngine(t, memstore.New(), Options{AllowedDatabases: []string{"shop"}})
	ctx := context.Background()
	_, err := e.Update(ctx, mustJSON(t, map[string]any{"multi_session_id": 1, "dbname": "other", "user_ID": 1, "message": syncAllMsg(1, 1, true)}))
	if appliance.ErrorCode(err) != appliance.EFORBIDDEN {
		t.Errorf("Update(other) = %v, want EFORBIDDEN", err)
	}
	if _, err := e.Ping(ctx, mustJSON(t, map[string]any{"pos_id": 1, "db_name": "other"})); appliance.ErrorCode(err) != appliance.EFORBIDDEN {
		t.Errorf("Ping(other) = %v, want EFORBIDDEN", err)
	}
	for _, tt := range []struct {
		ch   string
		want string
	}{
		{`["other","pos.multi_session","1"]`, appliance.EFORBIDDEN},
		{`["oth\u0065r","pos.longpolling","1"]`, appliance.EFORBIDDEN}, // escaped: the name the bus publishes under
		{`["shop","pos.multi_session","1"]`, ""},
		{`not a channel`, ""},
	} {
		_, err := e.ParsePoll(mustJSON(t, map[string]any{"channels": []string{tt.ch}, "last": 0}))
		if appliance.ErrorCode(err) != tt.want {
			t.Errorf("ParsePoll(%s) = %v, want code %q", tt.ch, err, tt.want)
		}
	}
	call(t, e, "shop", 1, 1, syncAllMsg(1, 1, true))
}
