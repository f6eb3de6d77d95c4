package engine

import (
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"possync/appliance"
)

// Warning kinds.
const (
	WarnRefused  = "refused"  // a request possync could not accept (bad JSON, unknown route, too large…)
	WarnStore    = "store"    // a write the store refused (disk full, I/O error)
	WarnConflict = "conflict" // an update_order or remove_order behind the server's revision
)

// maxWarnings is how many recent warnings are kept.
const maxWarnings = 20

// maxWarningText bounds the bytes kept of a warning's source and message:
// they may carry a client's text (a path, a channel, a value), and the
// status page shows every warning on each refresh.
const maxWarningText = 300

// Warning is one recent problem, for the status page. It carries ids and
// counts only, never order contents.
type Warning struct {
	At      time.Time // last occurrence (wall clock plus monotonic reading)
	Kind    string    // WarnRefused, WarnStore or WarnConflict
	Source  string    // who: a remote address, "shop/ms 1 POS 3"…
	Message string
	Count   int // occurrences in a row of the same kind, source and message
}

// warnings is a small ring of recent warnings; a repeat of the newest one
// only bumps its count, so a flood from one client keeps the others.
type warnings struct {
	// mu guards the fields that follow. It is a leaf lock.
	mu   sync.Mutex
	ring [maxWarnings]Warning
	next int // index of the next write
	n    int // entries in use
}

func (w *warnings) add(kind, source, msg string) {
	source, msg = clip(source, maxWarningText), clip(msg, maxWarningText)
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n > 0 {
		last := &w.ring[(w.next+maxWarnings-1)%maxWarnings]
		if last.Kind == kind && last.Source == source && last.Message == msg {
			last.Count++
			last.At = now
			return
		}
	}
	w.ring[w.next] = Warning{At: now, Kind: kind, Source: source, Message: msg, Count: 1}
	w.next = (w.next + 1) % maxWarnings
	w.n = min(w.n+1, maxWarnings)
}

// clip returns s cut to at most n bytes on a rune boundary, marked with
// "…" when cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func (w *warnings) recent() []Warning {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]Warning, 0, w.n)
	for i := 1; i <= w.n; i++ {
		out = append(out, w.ring[(w.next+maxWarnings-i)%maxWarnings])
	}
	return out
}

// Warn records a warning seen outside the engine (the HTTP layer's refused
// requests) for the status page.
func (e *Engine) Warn(kind, source, msg string) { e.warnings.add(kind, source, msg) }

// storeFailed counts a refused store write and records it as a warning.
func (e *Engine) storeFailed(source string, err error) {
	e.counters.storeErrors.Add(1)
	e.warnings.add(WarnStore, source, err.Error())
}

// conflict records a revision conflict of a POS (posID 0 = not sent).
func (e *Engine) conflict(key appliance.SessionKey, posID int64, msg string) {
	src := key.DB + "/" + strconv.FormatInt(key.ID, 10)
	if posID != 0 {
		src += " POS " + strconv.FormatInt(posID, 10)
	}
	e.warnings.add(WarnConflict, src, msg)
}
