package apptest

import (
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"
)

// Till is a simulated Odoo 12 POS that, on top of a Terminal, keeps the
// local order list and applies bus messages the way pos_multi_session does
// (ms.js@12.0 updates_from_server, protocol.md §4.2-§4.4, §6.1), including
// the parts that can destroy orders: a full sync_all destroys every local
// order that came from the server and is not in its list, and the till then
// sends remove_order for it (§4.3); a message_ID gap makes it request a
// pushed sync_all (§6.1). Start it with Start.
//
// It records what a test needs to judge the server: how often each bus id
// was delivered, the remove_order messages it sent, the orders it holds.
type Till struct {
	*Terminal

	// queue serializes the till's update_order and remove_order calls, as
	// ms.js's send queue (enque) does: a remove_order runs after the write
	// in flight and carries the revision that write's answer gave.
	queue sync.Mutex

	// mu guards the fields that follow.
	mu        sync.Mutex
	orders    map[string]Order // local order list by uid
	revs      map[string]int64 // highest revision answered to the till's own writes, by uid
	delivered map[int64]int    // bus id → times delivered
	removes   []string         // uids of remove_order sent
	syncAlls  int              // sync_all messages applied from the bus
	errs      []error          // failed requests of the message loop

}

// NewTill returns a till on serverURL; cfg.Cursor sets the bus cursor it
// starts with (as restored from localStorage, §9.3-1).
func NewTill(tb testing.TB, serverURL string, cfg TerminalConfig) *Till {
	tb.Helper()
	return &Till{
		Terminal:  NewTerminal(tb, serverURL, cfg),
		orders:    make(map[string]Order),
		revs:      make(map[string]int64),
		delivered: make(map[int64]int),
	}
}

// Start runs the POS start-up sequence (§6.8): an immediate sync_all whose
// answer fills the order list, then the bus poller; once the first poll has
// answered (the bus goes online) the till asks for a pushed sync_all
// (§6.2, §9.3-6). Bus messages are applied in a goroutine until cleanup.
func (t *Till) Start() error {
	res, err := t.SyncAll(true, "")
	if err != nil {
		return err
	}
	t.applySyncAll(res, false)
	t.StartPolling()
	go t.loop()
	go func() {
		for t.ctx.Err() == nil && t.Polls() == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		if t.ctx.Err() == nil {
			if _, err := t.SyncAll(false, ""); err != nil {
				t.fail(err)
			}
		}
	}()
	return nil
}

func (t *Till) fail(err error) {
	if t.ctx.Err() != nil {
		return
	}
	t.mu.Lock()
	t.errs = append(t.errs, err)
	t.mu.Unlock()
}

// CreateOrder makes a new order with one line and sends it (update_order),
// as a cashier adding a product to a new order does. The returned order is
// the caller's; the till's order list holds a copy, which the message loop
// may replace at any time.
func (t *Till) CreateOrder(seq int64) (Order, error) {
	o := t.NewOrder(seq)
	t.AddLine(o, 50, 1, 4.8)
	if _, err := t.UpdateOrder(o); err != nil {
		return nil, err
	}
	local := Order(Clone(o))
	t.mu.Lock()
	t.orders[o.UID()] = local
	t.mu.Unlock()
	return o, nil
}

// UpdateOrder sends the caller's order o like Terminal.UpdateOrder and
// applies the answer to the till's copy of it too (update_revision_id:
// revision, and the number when the server renumbers it).
func (t *Till) UpdateOrder(o Order) (map[string]any, error) {
	t.queue.Lock()
	defer t.queue.Unlock()
	res, err := t.Terminal.UpdateOrder(o)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	if local := t.orders[o.UID()]; local != nil {
		local.Adopt(res)
	}
	t.revs[o.UID()] = max(t.revs[o.UID()], o.Revision())
	t.mu.Unlock()
	return res, nil
}

// PayOrder pays o as a cashier does: the order is finalized, leaves the
// local list and remove_order is sent with finalized true (ms.js
// Order.destroy after validation, protocol.md §4.4).
func (t *Till) PayOrder(o Order) error {
	o["finalized"] = true
	t.mu.Lock()
	delete(t.orders, o.UID())
	t.mu.Unlock()
	t.queue.Lock() // behind the till's write in flight, as ms.js's send queue
	defer t.queue.Unlock()
	if _, err := t.RemoveOrder(o, true); err != nil {
		return fmt.Errorf("pay %s: %w", o.UID(), err)
	}
	return nil
}

func (t *Till) loop() {
	for {
		select {
		case <-t.ctx.Done():
			return
		case n := <-t.notes:
			t.apply(n)
		}
	}
}

// apply handles one bus notification like updates_from_server_callback.
func (t *Till) apply(n Notification) {
	t.mu.Lock()
	t.delivered[n.ID]++
	t.mu.Unlock()
	if n.Kind() != "pos.multi_session" || n.Echo {
		return
	}
	switch n.Action() {
	case "sync_all":
		t.mu.Lock()
		t.syncAlls++
		t.mu.Unlock()
		t.applySyncAll(n.Msg(), true)
		return
	}
	if n.Gap {
		if _, err := t.SyncAll(false, ""); err != nil { // request_sync_all()
			t.fail(err)
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch n.Action() {
	case "remove_order":
		delete(t.orders, n.UID())
	case "update_order":
		t.updateLocked(n.Data())
	}
}

// updateLocked is ms_update_order: finalized orders are left alone; others
// are created or replaced from the data and marked order_on_server. An
// order the till already has keeps its own sequence_number: apply_ms_data
// takes revision_ID, ms_info and the fiscal position, and the lines are
// replaced, but only the answer to the till's own write renumbers it
// (update_revision_id, protocol.md §4.2).
func (t *Till) updateLocked(data map[string]any) {
	uid, _ := data["uid"].(string)
	old := t.orders[uid]
	if old != nil && old["finalized"] == true {
		return
	}
	o := OrderFromData(data)
	if old != nil {
		if seq, ok := old["sequence_number"]; ok {
			o["sequence_number"] = seq
		} else {
			delete(o, "sequence_number")
		}
	}
	o["order_on_server"] = true
	t.orders[uid] = o
}

// applySyncAll applies a sync_all object (HTTP answer or bus message):
// every listed order is updated; a full sync (no uid) then destroys the
// local orders that are on the server but not listed, and, with
// sendRemoves, sends remove_order for each, as ms.js does once
// ms_syncing_in_progress is false again (§4.3).
func (t *Till) applySyncAll(msg map[string]any, sendRemoves bool) {
	data, _ := msg["data"].(map[string]any)
	if data == nil {
		return
	}
	listed := make(map[string]bool)
	var destroyed []Order
	t.mu.Lock()
	orders, _ := data["orders"].([]any)
	for _, it := range orders {
		m, _ := it.(map[string]any)
		d, _ := m["data"].(map[string]any)
		if d == nil {
			continue
		}
		uid, _ := d["uid"].(string)
		listed[uid] = true
		t.updateLocked(d)
	}
	if uid, _ := data["uid"].(string); uid == "" {
		for uid, o := range t.orders {
			if !listed[uid] && o["order_on_server"] == true {
				delete(t.orders, uid)
				destroyed = append(destroyed, o)
			}
		}
	}
	t.mu.Unlock()
	if !sendRemoves {
		return
	}
	for _, o := range destroyed {
		t.queue.Lock()
		t.mu.Lock()
		rev := max(o.Revision(), t.revs[o.UID()])
		t.mu.Unlock()
		_, err := t.RemoveOrder(Order{"uid": o.UID(), "revision_ID": rev}, false)
		t.queue.Unlock()
		if err != nil {
			t.fail(err)
		}
		t.mu.Lock()
		t.removes = append(t.removes, o.UID())
		t.mu.Unlock()
	}
}

// OrderUIDs returns the uids of the local orders, sorted.
func (t *Till) OrderUIDs() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]string, 0, len(t.orders))
	for uid := range t.orders {
		out = append(out, uid)
	}
	sort.Strings(out)
	return out
}

// Order returns a copy of local order uid, or nil.
func (t *Till) Order(uid string) Order {
	t.mu.Lock()
	defer t.mu.Unlock()
	if o := t.orders[uid]; o != nil {
		return Order(Clone(o))
	}
	return nil
}

// HasOrder reports whether uid is in the local order list.
func (t *Till) HasOrder(uid string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.orders[uid] != nil
}

// RemovesSent returns the uids of the remove_order messages the till sent.
func (t *Till) RemovesSent() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.removes...)
}

// SyncAllsApplied returns how many sync_all messages from the bus the till
// applied.
func (t *Till) SyncAllsApplied() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.syncAlls
}

// Repeats returns the bus ids delivered more than once, with their counts.
func (t *Till) Repeats() map[int64]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[int64]int)
	for id, n := range t.delivered {
		if n > 1 {
			out[id] = n
		}
	}
	return out
}

// Delivered returns how many notifications (counting repeats) the till got.
func (t *Till) Delivered() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, c := range t.delivered {
		n += c
	}
	return n
}

// Errors returns the requests of the message loop that failed.
func (t *Till) Errors() []error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]error(nil), t.errs...)
}

func (t *Till) String() string {
	return fmt.Sprintf("till %v", t.Terminal)
}
