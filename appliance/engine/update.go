package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"possync/appliance"
)

// request is a parsed /pos_multi_session_sync/update call.
type request struct {
	key    appliance.SessionKey
	userID int64
	msg    object // params.message
	data   object // params.message.data
	action string
	run    int64
}

const (
	pMsg  = "params.message"
	pData = "params.message.data"
)

func parseRequest(params json.RawMessage) (*request, error) {
	p, err := parseObject(params, "params")
	if err != nil {
		return nil, err
	}
	r := &request{}
	if r.key.ID, err = p.requiredInt("multi_session_id", "params"); err != nil {
		return nil, err
	}
	if r.key.DB, err = p.dbName("dbname", "params"); err != nil {
		return nil, err
	}
	if r.userID, err = p.requiredInt("user_ID", "params"); err != nil {
		return nil, err
	}
	if r.msg, err = parseMember(p.field("message"), pMsg); err != nil {
		return nil, err
	}
	if r.action, err = r.msg.requiredString("action", pMsg); err != nil {
		return nil, err
	}
	if r.data, err = parseMember(r.msg.field("data"), pData); err != nil {
		return nil, err
	}
	if r.run, err = r.data.requiredInt("run_ID", pData); err != nil {
		return nil, err
	}
	return r, nil
}

// Update handles one /pos_multi_session_sync/update call. params is the
// JSON-RPC params object. The result is the JSON-RPC result; business
// conditions (stale revision, duplicate, deleted order) are results, and an
// error means the request could not be understood (appliance.EINVALID) or
// not stored (appliance.EUNAVAILABLE): nothing was applied then.
func (e *Engine) Update(ctx context.Context, params json.RawMessage) (json.RawMessage, error) {
	e.counters.requests.Add(1)
	r, err := parseRequest(params)
	if err != nil {
		return nil, err
	}
	if err := e.checkDB(r.key.DB); err != nil {
		return nil, err
	}
	switch r.action {
	case "update_order":
		return e.updateOrder(ctx, r)
	case "sync_all":
		return e.syncAll(ctx, r)
	case "remove_order":
		return e.removeOrder(ctx, r)
	default:
		return e.relay(ctx, r)
	}
}

// orderUpdate is the part of an update_order message the engine owns.
type orderUpdate struct {
	uid   string
	rev   int64
	nonce json.RawMessage
	seq   int64
	lines []line // data.lines as checkLines split them (nil: none or unreadable), for markChanged
}

func parseOrderUpdate(data object, path string) (orderUpdate, error) {
	var u orderUpdate
	var err error
	if u.uid, err = data.orderUID(path); err != nil {
		return u, err
	}
	if u.rev, err = data.requiredInt("revision_ID", path); err != nil {
		return u, err
	}
	if u.seq, err = data.requiredInt("sequence_number", path); err != nil {
		return u, err
	}
	if u.nonce = data["nonce"]; len(u.nonce) == 0 {
		return u, invalid("%s.nonce is missing", path)
	}
	u.lines, err = checkLines(data.field("lines"), path+".lines")
	return u, err
}

func (e *Engine) updateOrder(ctx context.Context, r *request) (json.RawMessage, error) {
	u, err := parseOrderUpdate(r.data, pData)
	if err != nil {
		return nil, err
	}
	s, _, unlock, err := e.lockSessions(r.key, nil)
	if err != nil {
		return nil, err
	}
	defer unlock()
	// Activity is recorded once the multi-session is admitted, so refused
	// requests do not fill the bounded activity table.
	posID, _ := r.data.requiredInt("pos_id", pData)
	if posID != 0 {
		e.seen(appliance.POSKey{DB: r.key.DB, ID: posID}, r.key.ID, r.userID)
	}
	t := e.newTxn(s, nil)
	t.beginRun(r.run)
	res, accepted := t.storeOrder(r.msg, r.data, u, r.run)
	if accepted {
		t.broadcast(r.msg, r.data)
	}
	if accepted || t.sessionDirty {
		if err := t.commit(ctx); err != nil {
			return nil, err
		}
	}
	switch {
	case accepted:
		e.counters.accepted.Add(1)
	case string(res) == `{"action":""}`:
		e.counters.duplicates.Add(1)
	default:
		e.counters.revisionErrors.Add(1)
		server := "unknown to the server"
		if o := t.order(u.uid); o != nil {
			server = "server has " + strconv.FormatInt(o.rev, 10)
			if o.state == appliance.StateDeleted {
				server += " (deleted)"
			}
		}
		e.conflict(r.key, posID, fmt.Sprintf("update_order %s: revision_ID %d, %s", u.uid, u.rev, server))
	}
	return res, nil
}

// storeOrder is the storing path of update_order (protocol.md §4.2 steps
// 2–5): revision check, nonce duplicate, deleted check, is_changed marking,
// numbering. On acceptance it updates data in place (sequence_number,
// revision_ID, run_ID, lines) and queues the order write; it never
// broadcasts.
//
// The server owns what it assigns (issue 7). A new order gets the next
// number of the run; an existing order keeps its number and run whatever
// the message says, because a till that lost an answer still sends its
// local number (and the reference stored it: two orders with one number).
// The answer's order_ID then makes that till renumber (ms.js
// update_revision_id). The one exception: a write in the current run of an
// order stored in an older run moves the order into the current run, and
// there it gets the run's next number, since its old number may already be
// taken there.
func (t *txn) storeOrder(msg, data object, u orderUpdate, run int64) (json.RawMessage, bool) {
	o := t.order(u.uid)
	serverRev := int64(1)
	if o != nil {
		serverRev = o.rev
	}
	if u.rev != serverRev {
		if o != nil && jsonEqual(u.nonce, json.RawMessage(o.nonce)) {
			return json.RawMessage(`{"action":""}`), false
		}
		return revisionError(u.uid, o), false
	}
	if o != nil && o.state == appliance.StateDeleted {
		return revisionError(u.uid, o), false
	}

	n := &orderState{nonce: string(compactRaw(u.nonce)), state: appliance.StateDraft, run: run, updated: t.now}
	if o != nil {
		prev := o.lines
		if prev == nil {
			prev = storedLines(o.msg)
		}
		n.lines = markChanged(data, u.lines, prev)
		n.rev = o.rev + 1
		n.run = o.run
		if run > o.run && run == t.runID {
			n.run = run // and numbered below, in the current run
		} else {
			n.seq = o.number() // 0 if unreadable: numbered below
		}
	} else {
		n.rev = 1
		n.lines = markChanged(data, u.lines, nil)
	}
	if n.seq == 0 {
		n.seq = t.orderID + 1
		t.setOrderID(n.seq)
	}
	if n.seq != u.seq {
		data["sequence_number"] = rawInt(n.seq)
	}
	if n.run != run {
		data["run_ID"] = rawInt(n.run)
	}
	data["revision_ID"] = rawInt(n.rev)
	delete(data, "message_ID")
	msg["data"] = data.bytes()
	n.msg = msg.bytes()
	t.setOrder(u.uid, n)

	res := object{
		"action":      json.RawMessage(`"update_revision_ID"`),
		"revision_ID": rawInt(n.rev),
		"uid":         rawString(u.uid),
		"order_ID":    rawInt(n.seq),
		"run_ID":      rawInt(n.run),
	}
	return res.bytes(), true
}

func revisionError(uid string, o *orderState) json.RawMessage {
	state := json.RawMessage("false") // the reference yields False for unknown orders
	if o != nil {
		state = rawString(string(o.state))
	}
	return object{"action": json.RawMessage(`"revision_error"`), "order_uid": rawString(uid), "state": state}.bytes()
}

func compactRaw(raw json.RawMessage) []byte {
	var buf []byte
	if b, err := json.Marshal(raw); err == nil {
		buf = b
	} else {
		buf = raw
	}
	return buf
}
