package apptest

import (
	"encoding/json"
	"fmt"
)

// Params returns the params of a /pos_multi_session_sync/update call for
// message, as ms.js builds them (§3.2).
func (t *Terminal) Params(message map[string]any) map[string]any {
	return map[string]any{
		"multi_session_id": t.cfg.MultiSessionID,
		"message":          message,
		"dbname":           t.cfg.DB,
		"user_ID":          t.cfg.UserID,
	}
}

// Message returns a message envelope like MultiSession.send (§4.1): action,
// data with pos_id and a fresh nonce added unless data already has them,
// session_id and login_number, plus the keys of top. data is copied, not
// modified.
func (t *Terminal) Message(action string, data map[string]any, top map[string]any) map[string]any {
	d := make(map[string]any, len(data)+2)
	for k, v := range data {
		d[k] = v
	}
	if _, ok := d["pos_id"]; !ok {
		d["pos_id"] = t.cfg.POSID
	}
	if _, ok := d["nonce"]; !ok {
		d["nonce"] = newNonce()
	}
	m := map[string]any{
		"action":       action,
		"data":         d,
		"session_id":   t.cfg.SessionID,
		"login_number": t.cfg.LoginNumber,
	}
	for k, v := range top {
		m[k] = v
	}
	return m
}

// Send posts a message built by Message to /pos_multi_session_sync/update
// and returns the JSON-RPC result, or an error for anything but a success
// answer echoing the request id.
func (t *Terminal) Send(action string, data map[string]any, top map[string]any) (any, error) {
	r := t.Call(RouteUpdate, t.Params(t.Message(action, data, top)))
	if err := r.Failure(); err != nil {
		return nil, fmt.Errorf("%v %s: %w", t, action, err)
	}
	return r.Result, nil
}

func (t *Terminal) sendObject(action string, data map[string]any, top map[string]any) (map[string]any, error) {
	res, err := t.Send(action, data, top)
	if err != nil {
		return nil, err
	}
	m, ok := res.(map[string]any)
	if !ok {
		// §2.2: ms.js reads res.action unguarded; the result must be an object.
		return nil, fmt.Errorf("%v %s: result %v is not an object", t, action, res)
	}
	return m, nil
}

// UpdateOrder sends update_order with order.Export() as data and a fresh
// nonce and, like ms.js, applies the answer to order (Order.Adopt). The
// caller must not use order concurrently.
func (t *Terminal) UpdateOrder(order Order) (map[string]any, error) {
	res, err := t.SendOrder(order, "")
	if err != nil {
		return nil, err
	}
	order.Adopt(res)
	order["order_on_server"] = true // set on any answer (send_updates_to_server's .done)
	return res, nil
}

// SendOrder sends update_order with order.Export() as data and nonce ("" =
// a fresh one, as MultiSession.send makes) and returns the answer without
// applying it to order. A terminal whose answer was lost (power cut, Wi-Fi
// drop, server killed after the commit) is one that calls SendOrder and
// never Adopt: its order keeps its local revision_ID and sequence_number.
func (t *Terminal) SendOrder(order Order, nonce string) (map[string]any, error) {
	data := order.Export()
	data["pos_id"] = t.cfg.POSID // send() always sets both (§4.1)
	if nonce == "" {
		nonce = newNonce()
	}
	data["nonce"] = nonce
	return t.sendObject("update_order", data, nil)
}

// RemoveOrder sends remove_order for order as ms.js does when an order leaves
// the order list (§4.4): uid, the order's revision_ID, finalized, and the
// terminal's current run_ID.
func (t *Terminal) RemoveOrder(order Order, finalized bool) (map[string]any, error) {
	return t.sendObject("remove_order", map[string]any{
		"uid":         order.UID(),
		"revision_ID": order.Revision(),
		"finalized":   finalized,
		"run_ID":      t.RunID(),
	}, nil)
}

// RemovePaidOffline sends the paid-offline variant of remove_order (§4.4,
// §6.6): finalized true and order_data, a JSON *string* holding
// {"id":uid,"data":<export_as_JSON>} (the pos.db "orders" record).
func (t *Terminal) RemovePaidOffline(order Order) (map[string]any, error) {
	rec, err := json.Marshal(map[string]any{"id": order.UID(), "data": order.Export()})
	if err != nil {
		return nil, err
	}
	return t.sendObject("remove_order", map[string]any{
		"uid":         order.UID(),
		"revision_ID": order.Revision(),
		"finalized":   true,
		"run_ID":      t.RunID(),
		"order_data":  string(rec),
	}, nil)
}

// SyncAll sends sync_all (§4.3): data {run_ID, pos_id, nonce}, top-level
// immediate_rerendering (only when immediate) and uid (only when not "").
// An immediate sync_all answer sets the client's message_ID, like ms.js.
func (t *Terminal) SyncAll(immediate bool, uid string) (map[string]any, error) {
	top := map[string]any{}
	if immediate {
		top["immediate_rerendering"] = true
	}
	if uid != "" {
		top["uid"] = uid
	}
	res, err := t.sendObject("sync_all", map[string]any{"run_ID": t.RunID()}, top)
	if err != nil {
		return nil, err
	}
	if immediate && res["action"] == "sync_all" {
		if d, ok := res["data"].(map[string]any); ok {
			t.mu.Lock()
			t.messageID = Int(d["message_ID"])
			t.mu.Unlock()
		}
	}
	return res, nil
}

// Ping sends the PING of pos_longpolling (§3.3) and returns the result
// (the server answers 1 and publishes "PONG" on this POS's
// pos.longpolling channel).
func (t *Terminal) Ping() (any, error) {
	r := t.Call(RoutePing, map[string]any{"message": "PING", "pos_id": t.cfg.POSID, "db_name": t.cfg.DB})
	if err := r.Failure(); err != nil {
		return nil, fmt.Errorf("%v PING: %w", t, err)
	}
	return r.Result, nil
}

// Int converts a decoded JSON number (json.Number, float64, int, int64) to
// int64; anything else gives 0.
func Int(v any) int64 {
	switch n := v.(type) {
	case json.Number:
		if i, err := n.Int64(); err == nil {
			return i
		}
		if f, err := n.Float64(); err == nil {
			return int64(f)
		}
	case float64:
		return int64(n)
	case int:
		return int64(n)
	case int64:
		return n
	}
	return 0
}
