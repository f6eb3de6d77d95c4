package engine

import "time"

// A Raspberry Pi has no battery-backed clock: after a power cut it may run
// with a wall clock hours or years behind (or, once NTP answers, ahead of)
// the times an earlier run stored. Within one run the engine measures ages
// as differences of readings of its clock (time.Now carries a monotonic
// reading, so clock steps do not move them). Across a restart it cannot
// know how much time passed, so a stored time is only trusted within
// bounds: see storedAge. ARCHITECTURE.md ("Durability") states the rule.

// restartKeep is the least time a notification stored by an earlier run is
// kept after this start, whatever the clocks say: more than the Odoo bus's
// own 100 s (protocol.md §9.2-3), so tills reconnecting after the restart
// with a cursor still find it.
const restartKeep = 2 * time.Minute

// orderRestartKeep is the least time a deleted or unpaid order of an ended
// run, loaded from the store, is kept after this start.
const orderRestartKeep = time.Hour

// storedAge returns how old a record stored by an earlier run with wall
// time at is taken to be at now: its wall-clock age, but at least 0 (a
// clock now behind the stored time must not keep it for as long as the
// clock is behind) and at most maxAge (a clock stepped forward must not
// expire it at once).
func storedAge(now, at time.Time, maxAge time.Duration) time.Duration {
	age := now.Round(0).Sub(at.Round(0))
	return min(max(age, 0), max(maxAge, 0))
}
