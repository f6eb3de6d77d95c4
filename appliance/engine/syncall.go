package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"possync/appliance"
)

// syncAll answers a full or single-order resync (protocol.md §4.3).
func (e *Engine) syncAll(ctx context.Context, r *request) (json.RawMessage, error) {
	posID, err := r.data.requiredInt("pos_id", pData)
	if err != nil {
		return nil, err
	}
	var uid string
	uidRaw := r.msg.field("uid")
	if uidRaw != nil {
		if kind(uidRaw) != "string" {
			return nil, invalid("%s.uid must be a string, got %s", pMsg, kind(uidRaw))
		}
		_ = json.Unmarshal(uidRaw, &uid)
	}
	e.counters.syncAll.Add(1)
	s, from, unlock, err := e.lockSessions(r.key, &posID)
	if err != nil {
		return nil, err
	}
	defer unlock()
	e.seen(appliance.POSKey{DB: r.key.DB, ID: posID}, r.key.ID, r.userID)
	t := e.newTxn(s, from)
	t.beginRun(r.run)

	row, ok := t.posRow(posID)
	if !ok && from != nil {
		// The POS moved here from another multi-session: keep its counter.
		if p, ok2 := from.pos[posID]; ok2 {
			row, ok = *p, true
			t.movedPOS = posID
		}
	}
	if !ok {
		row = posState{messageID: 1}
	}
	row.userID = r.userID
	row.messageID++
	m := row.messageID
	t.pos[posID] = row

	var stored []*storedOrder
	if uid != "" {
		if o := t.order(uid); o != nil {
			msg, err := e.orderMessage(ctx, r.key, uid, o)
			if err != nil {
				return nil, err
			}
			stored = append(stored, &storedOrder{uid: uid, o: o, msg: msg})
		}
	} else {
		for uid, o := range t.s.orders {
			if o2 := t.order(uid); o2 != nil {
				o = o2
			}
			if o.state == appliance.StateDraft && o.run == r.run {
				stored = append(stored, &storedOrder{uid: uid, o: o, msg: o.msg})
			}
		}
		for uid, o := range t.orders { // orders new in this txn (none today, kept for safety)
			if _, ok := t.s.orders[uid]; !ok && o.state == appliance.StateDraft && o.run == r.run {
				stored = append(stored, &storedOrder{uid: uid, o: o, msg: o.msg})
			}
		}
		slices.SortFunc(stored, func(a, b *storedOrder) int { return compareStrings(a.uid, b.uid) })
	}

	orders, err := syncOrders(stored, m, r)
	if err != nil {
		return nil, err
	}
	data := object{
		"orders":       orders,
		"order_ID":     rawInt(t.orderID),
		"uid":          nullIfEmpty(uidRaw),
		"login_number": nullIfEmpty(r.msg.field("login_number")),
		"session_id":   nullIfEmpty(r.msg.field("session_id")),
	}
	result := object{"action": json.RawMessage(`"sync_all"`)}

	immediate := truthy(r.msg["immediate_rerendering"])
	if !immediate {
		// Push to every POS of this user in this multi-session, each copy
		// with that POS's current message_ID (the requester's is m).
		var targets []appliance.Target
		for _, id := range t.posIDs() {
			p, _ := t.posRow(id)
			if p.userID == r.userID {
				targets = append(targets, appliance.Target{Channel: multiSessionChannel(r.key.DB, id), MessageID: p.messageID})
			}
		}
		t.push(result, data, targets)
	}
	if cerr := t.commit(ctx); cerr != nil {
		if !immediate || appliance.ErrorCode(cerr) != appliance.EUNAVAILABLE {
			return nil, cerr
		}
		// The store cannot take the write (disk full, read-only): a till
		// that is loading still gets the shop's open orders, answered
		// from memory without a durable write. Its message_ID is the
		// POS's stored counter, not a new one: the counter only moves
		// with a durable write, so the next notification to this POS
		// carries exactly that value plus one and the till sees no gap.
		// (A POS without a row has counter 1 and gets no notifications
		// until a later sync_all creates its row.) Nothing is stored.
		m--
		if orders, err = syncOrders(stored, m, r); err != nil {
			return nil, err
		}
		data["orders"] = orders
		e.log.Warn("sync_all answered from memory: store cannot take the write",
			"db", r.key.DB, "multi_session_id", r.key.ID, "pos_id", posID, "message_ID", m, "err", cerr)
	} else if !immediate {
		return json.RawMessage(`{}`), nil
	}
	data["message_ID"] = rawInt(m)
	result["data"] = data.bytes()
	return result.bytes(), nil
}

// syncOrders renders the orders of a sync_all answer as a JSON array.
func syncOrders(stored []*storedOrder, m int64, r *request) ([]byte, error) {
	orders := make([]byte, 0, 1024)
	orders = append(orders, '[')
	for i, so := range stored {
		if i > 0 {
			orders = append(orders, ',')
		}
		b, err := syncCopy(so, m, r.run)
		if err != nil {
			return nil, fmt.Errorf("sync_all order %q of %s/%d: %w", so.uid, r.key.DB, r.key.ID, err)
		}
		orders = append(orders, b...)
	}
	return append(orders, ']'), nil
}

type storedOrder struct {
	uid string
	o   *orderState
	msg []byte
}

// orderMessage returns the stored message of an order, reading the store
// for deleted orders whose message is not kept in memory.
func (e *Engine) orderMessage(ctx context.Context, key appliance.SessionKey, uid string, o *orderState) ([]byte, error) {
	if o.msg != nil {
		return o.msg, nil
	}
	rec, err := e.store.Order(ctx, appliance.OrderKey{Session: key, UID: uid})
	if errors.Is(err, appliance.ErrNotFound) {
		return nil, fmt.Errorf("order %q of %s/%d is in memory but not in the store", uid, key.DB, key.ID)
	}
	if err != nil {
		return nil, fmt.Errorf("read order %q of %s/%d: %w", uid, key.DB, key.ID, err)
	}
	return rec.Message, nil
}

// syncCopy renders one order for a sync_all answer: the stored message with
// data.message_ID, the server revision_ID, the requester's run_ID and every
// line marked is_changed.
func syncCopy(so *storedOrder, messageID, run int64) ([]byte, error) {
	msg, err := parseObject(so.msg, "stored order")
	if err != nil {
		return nil, err
	}
	data, err := parseObject(msg.field("data"), "stored order data")
	if err != nil {
		return nil, err
	}
	data["message_ID"] = rawInt(messageID)
	data["revision_ID"] = rawInt(so.o.rev)
	data["run_ID"] = rawInt(run)
	markAllChanged(data)
	msg["data"] = data.bytes()
	return msg.bytes(), nil
}

func nullIfEmpty(raw json.RawMessage) json.RawMessage {
	if raw == nil {
		return json.RawMessage("null")
	}
	return raw
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
