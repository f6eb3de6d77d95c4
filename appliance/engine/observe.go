package engine

import (
	"sync/atomic"
	"time"
)

// Observer receives timings from the hot paths, for metrics. Its methods
// are called on the update and poll paths: they must be cheap, must not
// block and must be safe for concurrent use.
type Observer interface {
	// Committed reports how long one Store.Commit took (fsync included).
	Committed(d time.Duration, err error)
	// Delivered reports, for a poll woken by a publish, the time from the
	// publish to the poll returning its notifications, and how many.
	Delivered(d time.Duration, n int)
}

type observerBox struct{ o Observer }

// SetObserver installs o (nil removes it). Safe to call at any time.
func (e *Engine) SetObserver(o Observer) {
	if o == nil {
		e.observer.Store(nil)
		return
	}
	e.observer.Store(&observerBox{o})
}

func (e *Engine) observeCommit(start time.Time, err error) {
	if b := e.observer.Load(); b != nil {
		b.o.Committed(time.Since(start), err)
	}
}

// observerField is embedded in Engine.
type observerField struct{ observer atomic.Pointer[observerBox] }
