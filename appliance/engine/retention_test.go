package engine

import (
	"context"
	"testing"
	"time"

	"possync/appliance"
	"possync/storage/memstore"
)

// Order times stored by an earlier run are trusted only within bounds
// (clock.go): an order stored "an hour in the future" (the clock is now
// behind) is purged at the retention from this start, not an hour later;
// one stored "a year ago" (the clock stepped forward) is kept
// orderRestartKeep; a plausible stored time counts as it is.
func TestRetentionBoundsStoredOrderTimes(t *testing.T) {
	clock := newFakeClock()
	now := clock.Now()
	store := memstore.New()
	sk := appliance.SessionKey{DB: "shop", ID: 1}
	rec := func(uid string, updated time.Time) appliance.OrderRecord {
		return appliance.OrderRecord{Key: appliance.OrderKey{Session: sk, UID: uid}, Revision: 1, Nonce: `"n"`,
			State: appliance.StateDeleted, Run: 1, Updated: updated, Message: []byte(`{}`)}
	}
	err := store.Commit(context.Background(), &appliance.Batch{
		Sessions: []appliance.SessionRecord{{Key: sk, RunID: 2}},
		Orders:   []appliance.OrderRecord{rec("ahead", now.Add(time.Hour)), rec("year-old", now.AddDate(-1, 0, 0)), rec("hour-old", now.Add(-time.Hour))},
	})
	if err != nil {
		t.Fatal(err)
	}
	const retention = 3 * time.Hour // an older run's order counts as at most 2 h old
	e := openEngine(t, store, Options{Now: clock.Now, OrderRetention: retention})
	steps := []struct {
		at   time.Duration // since start
		want int
	}{
		{0, 3},
		{orderRestartKeep - time.Second, 3},
		{orderRestartKeep + time.Second, 2},
		{2*time.Hour + time.Second, 1},
		{retention + time.Second, 0},
	}
	var elapsed time.Duration
	for _, st := range steps {
		clock.Advance(st.at - elapsed)
		elapsed = st.at
		if err := e.Purge(context.Background()); err != nil {
			t.Fatal(err)
		}
		snap, _ := store.Load(context.Background())
		if len(snap.Orders) != st.want {
			var uids []string
			for _, o := range snap.Orders {
				uids = append(uids, o.Key.UID)
			}
			t.Errorf("%v after start: stored orders %v, want %d", st.at, uids, st.want)
		}
	}
}
