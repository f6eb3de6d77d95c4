package engine

import (
	"context"
	"time"

	"possync/appliance"
)

func (e *Engine) retentionLoop(ctx context.Context) {
	t := time.NewTicker(e.opts.PurgeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := e.Purge(ctx); err != nil && ctx.Err() == nil {
				e.log.Warn("retention", "err", err)
			}
		}
	}
}

// Purge applies retention once: bus notifications older than the bus
// retention, and deleted/unpaid orders of ended runs (run below the
// session's current run) unchanged for longer than the order retention.
// Ages are differences of readings of the engine clock taken in this run;
// records loaded from an earlier run got a bounded age at Open (clock.go).
func (e *Engine) Purge(ctx context.Context) error {
	now := e.opts.Now()
	low, capped := e.bus.prune(e.opts.BusRetention, e.opts.BusMaxRetainedBytes)
	if capped > 0 {
		e.log.Warn("bus memory cap reached: notifications dropped before their retention ended; a POS that needed one resyncs by itself",
			"dropped", capped, "max_retained_bytes", e.opts.BusMaxRetainedBytes, "retention", e.opts.BusRetention)
	}

	e.mu.Lock()
	sessions := make([]*session, 0, len(e.sessions))
	for _, s := range e.sessions {
		sessions = append(sessions, s)
	}
	e.mu.Unlock()

	if err := e.store.Purge(ctx, appliance.Purge{BroadcastsBefore: low}); err != nil {
		return err
	}
	cutoff := now.Add(-e.opts.OrderRetention)
	purged := 0
	for _, s := range sessions {
		n, err := e.purgeOrders(ctx, s, cutoff)
		if err != nil {
			return err
		}
		purged += n
	}
	if purged > 0 {
		e.log.Info("retention purged orders", "orders", purged)
	}
	return nil
}

// purgeOrders deletes the session's expired orders. It holds the session
// lock throughout, so no update can slip in between the check and the delete.
func (e *Engine) purgeOrders(ctx context.Context, s *session, cutoff time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []appliance.OrderKey
	for uid, o := range s.orders {
		if (o.state == appliance.StateDeleted || o.state == appliance.StateUnpaid) && o.run < s.runID && o.updated.Before(cutoff) {
			keys = append(keys, appliance.OrderKey{Session: s.key, UID: uid})
		}
	}
	if len(keys) == 0 {
		return 0, nil
	}
	if err := e.store.Purge(ctx, appliance.Purge{Orders: keys}); err != nil {
		return 0, err
	}
	for _, k := range keys {
		delete(s.orders, k.UID)
	}
	s.sum.orders.Add(-int64(len(keys)))
	return len(keys), nil
}
