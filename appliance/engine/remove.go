package engine

import (
	"context"
	"encoding/json"
	"fmt"

	"possync/appliance"
)

// removeOrder handles remove_order, including the paid-offline variant
// whose data.order_data carries the whole order as JSON text (§4.4).
func (e *Engine) removeOrder(ctx context.Context, r *request) (json.RawMessage, error) {
	uid, err := r.data.orderUID(pData)
	if err != nil {
		return nil, err
	}
	rev, err := r.data.requiredInt("revision_ID", pData)
	if err != nil {
		return nil, err
	}
	nonce := r.data["nonce"]
	if len(nonce) == 0 {
		return nil, invalid("%s.nonce is missing", pData)
	}
	var paid *paidOffline
	if od := r.data.field("order_data"); od != nil {
		if paid, err = parseOrderData(od, uid); err != nil {
			return nil, err
		}
	}
	e.counters.removes.Add(1)
	s, _, unlock, err := e.lockSessions(r.key, nil)
	if err != nil {
		return nil, err
	}
	defer unlock()
	posID, _ := r.data.requiredInt("pos_id", pData)
	if posID != 0 {
		e.seen(appliance.POSKey{DB: r.key.DB, ID: posID}, r.key.ID, r.userID)
	}
	t := e.newTxn(s, nil)
	t.beginRun(r.run)

	o := t.order(uid)
	if o == nil && paid != nil {
		// Paid while offline: number and store it silently (never crashes
		// when the write is refused, §9.1-5), then remove it below.
		env := make(object, len(r.msg))
		for k, v := range r.msg {
			env[k] = v
		}
		env["action"] = json.RawMessage(`"update_order"`)
		paid.data["nonce"] = json.RawMessage(`"paid offline"`)
		run := r.run
		if pr, err := paid.data.requiredInt("run_ID", "order_data.data"); err == nil {
			run = pr
		}
		if _, ok := t.storeOrder(env, paid.data, paid.update, run); ok {
			o = t.order(uid)
		}
	}
	if o == nil || o.state != appliance.StateDeleted {
		serverRev := int64(1)
		if o != nil {
			serverRev = o.rev
		}
		if rev != serverRev && (o == nil || !jsonEqual(nonce, json.RawMessage(o.nonce))) {
			if t.sessionDirty || len(t.orders) > 0 {
				if err := t.commit(ctx); err != nil {
					return nil, err
				}
			}
			e.counters.revisionErrors.Add(1)
			e.conflict(r.key, posID, fmt.Sprintf("remove_order %s: revision_ID %d, server has %d", uid, rev, serverRev))
			return object{"action": json.RawMessage(`"revision_error"`), "order_uid": rawString(uid)}.bytes(), nil
		}
	}
	if o != nil && o.state != appliance.StateDeleted {
		c := *o
		c.state, c.updated = appliance.StateDeleted, t.now
		t.setOrder(uid, &c)
	}
	t.broadcast(r.msg, r.data)
	if err := t.commit(ctx); err != nil {
		return nil, err
	}
	return object{"order_ID": rawInt(t.orderID)}.bytes(), nil
}

type paidOffline struct {
	data   object
	update orderUpdate
}

// parseOrderData reads data.order_data: JSON text of {"id": uid, "data": {order}}.
func parseOrderData(raw json.RawMessage, uid string) (*paidOffline, error) {
	const path = pData + ".order_data"
	if kind(raw) != "string" {
		return nil, invalid("%s must be a string holding the paid order as JSON, got %s", path, kind(raw))
	}
	var text string
	if err := json.Unmarshal(raw, &text); err != nil {
		return nil, invalid("%s is not a valid string", path)
	}
	rec, err := parseObject(json.RawMessage(text), path)
	if err != nil {
		return nil, err
	}
	data, err := parseObject(rec.field("data"), path+".data")
	if err != nil {
		return nil, err
	}
	if data.field("uid") == nil {
		data["uid"] = rawString(uid)
	}
	if data.field("revision_ID") == nil {
		data["revision_ID"] = rawInt(1)
	}
	if data.field("sequence_number") == nil {
		data["sequence_number"] = rawInt(0)
	}
	data["nonce"] = json.RawMessage(`"paid offline"`)
	u, err := parseOrderUpdate(data, path+".data")
	if err != nil {
		return nil, err
	}
	if u.uid != uid {
		return nil, invalid("%s.data.uid %q does not match %s.uid %q", path, u.uid, pData, uid)
	}
	return &paidOffline{data: data, update: u}, nil
}

// relay broadcasts any other action unchanged (plus message_ID) to every POS
// of the multi-session and answers 1 (§4.5).
func (e *Engine) relay(ctx context.Context, r *request) (json.RawMessage, error) {
	e.counters.relays.Add(1)
	s, _, unlock, err := e.lockSessions(r.key, nil)
	if err != nil {
		return nil, err
	}
	defer unlock()
	t := e.newTxn(s, nil)
	t.beginRun(r.run)
	t.broadcast(r.msg, r.data)
	if err := t.commit(ctx); err != nil {
		return nil, err
	}
	return json.RawMessage("1"), nil
}
