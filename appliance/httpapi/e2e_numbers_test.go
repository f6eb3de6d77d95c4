package httpapi_test

// The server owns the numbers it gives (issue 7): once an order has a
// shared number, later writes keep it, whatever sequence_number the till
// sends, and the answer's order_ID makes a till that lost an answer
// renumber itself (§4.2 "Client handling of the answer").

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"possync/appliance/apptest"
)

// TestLostAnswerKeepsServerNumber is the input of issue 7: POS 5 creates
// 00001-001-0001 (number 1), POS 6 creates 00002-001-0001 with its local
// number 1 and is given 2, but never receives that answer. Its next write
// still says sequence_number 1 and revision_ID 1. The reference server (and
// possync before this fix) stored and broadcast it as number 1, so two open
// orders were numbered 1.
func TestLostAnswerKeepsServerNumber(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		restart bool  // the server restarts between the lost answer and the next write
		wantRev int64 // revision in the answer to the next write
		// next is POS 6's next write of the order whose creation answer was
		// lost; it returns the answer, already applied to o like ms.js does.
		next func(t *testing.T, pos5, pos6 *apptest.Terminal, o apptest.Order, creationNonce string) map[string]any
	}{
		{"next edit", false, 2, func(t *testing.T, _, pos6 *apptest.Terminal, o apptest.Order, _ string) map[string]any {
			pos6.AddLine(o, 51, 1, 2)
			return mustOK(t)(pos6.UpdateOrder(o))
		}},
		{"next edit after a restart", true, 2, func(t *testing.T, _, pos6 *apptest.Terminal, o apptest.Order, _ string) map[string]any {
			pos6.AddLine(o, 51, 1, 2)
			return mustOK(t)(pos6.UpdateOrder(o))
		}},
		// A re-delivered creation has the same nonce and revision 1, which is
		// still the server revision: it is accepted as an edit (§9.1-9: the
		// nonce only counts when the revision does not match).
		{"creation re-sent, same nonce", false, 2, func(t *testing.T, _, pos6 *apptest.Terminal, o apptest.Order, nonce string) map[string]any {
			res := mustOK(t)(pos6.SendOrder(o, nonce))
			o.Adopt(res)
			return res
		}},
		{"creation re-sent, new nonce", false, 2, func(t *testing.T, _, pos6 *apptest.Terminal, o apptest.Order, _ string) map[string]any {
			res := mustOK(t)(pos6.SendOrder(o, ""))
			o.Adopt(res)
			return res
		}},
		// POS 5 edits the order first: POS 6's write is refused, and the
		// single-order sync_all it then asks for gives it the revision
		// (apply_ms_data) but not the number (§4.2, §4.3): the answer to its
		// write after that is what renumbers it.
		{"next edit after a conflict", false, 3, func(t *testing.T, pos5, pos6 *apptest.Terminal, o apptest.Order, _ string) map[string]any {
			o5 := apptest.OrderFromData(expectMS(t, pos6, "update_order", o.UID()).Data()) // POS 6's own echo, as POS 5 saw it
			pos5.AddLine(o5, 52, 1, 3)
			if res := mustOK(t)(pos5.UpdateOrder(o5)); res["action"] != "update_revision_ID" {
				t.Fatalf("POS 5's edit answered %v", res)
			}
			expectMS(t, pos5, "update_order", o.UID()) // POS 5's own echo
			expectMS(t, pos6, "update_order", o.UID())
			pos6.AddLine(o, 51, 1, 2)
			res := mustOK(t)(pos6.UpdateOrder(o))
			if diff := cmp.Diff(map[string]any{"action": "revision_error", "order_uid": o.UID(), "state": "draft"}, res); diff != "" {
				t.Fatalf("POS 6's stale write (-want +got):\n%s", diff)
			}
			sc := syncOrders(t, mustOK(t)(pos6.SyncAll(true, o.UID())))[o.UID()]
			o["revision_ID"] = sc["revision_ID"]
			return mustOK(t)(pos6.UpdateOrder(o))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, apptest.Options{})
			c5, c6 := cfg("shop", 1, 5, 2), cfg("shop", 1, 6, 5)
			c5.SessionID, c6.SessionID = 1, 2
			pos5, pos6 := openPOS(t, srv, c5), openPOS(t, srv, c6)
			must := mustOK(t)

			o5 := pos5.NewOrder(1)
			pos5.AddLine(o5, 50, 1, 1)
			update(t, pos5, o5, revAnswer("00001-001-0001", 1, 1, 1))
			expectMS(t, pos5, "update_order", o5.UID()) // own echo
			expectMS(t, pos6, "update_order", o5.UID())

			o6 := pos6.NewOrder(1)
			pos6.AddLine(o6, 50, 2, 1)
			const creationNonce = "k2j4h"
			lost := must(pos6.SendOrder(o6, creationNonce)) // never reaches the till
			if diff := cmp.Diff(revAnswer("00002-001-0001", 1, 2, 1), lost); diff != "" {
				t.Fatalf("creation answer (-want +got):\n%s", diff)
			}
			if got := expectMS(t, pos5, "update_order", o6.UID()).Data()["sequence_number"]; got != n(2) {
				t.Fatalf("POS 5 received the creation with sequence_number %v, want 2", got)
			}
			if tt.restart {
				srv = srv.Restart(t)
				pos5.SetURL(srv.URL)
				pos6.SetURL(srv.URL)
			}

			res := tt.next(t, pos5, pos6, o6, creationNonce)
			if diff := cmp.Diff(revAnswer(o6.UID(), tt.wantRev, 2, 1), res); diff != "" {
				t.Errorf("answer to POS 6's write with its local number 1 (-want +got):\n%s", diff)
			}
			if got := apptest.Int(o6["sequence_number"]); got != 2 {
				t.Errorf("POS 6's order after the answer has sequence_number %d, want 2 (renumbered like ms.js)", got)
			}
			if got := expectMS(t, pos5, "update_order", o6.UID()).Data()["sequence_number"]; got != n(2) {
				t.Errorf("POS 5 received the write with sequence_number %v, want the server's 2", got)
			}

			for _, single := range []string{"", o6.UID()} {
				orders := syncOrders(t, must(pos5.SyncAll(true, single)))
				if got := orders[o6.UID()]["sequence_number"]; got != n(2) {
					t.Errorf("sync_all(uid %q) lists %s with sequence_number %v, want 2", single, o6.UID(), got)
				}
				if single == "" {
					if got := orders[o5.UID()]["sequence_number"]; got != n(1) || len(orders) != 2 {
						t.Errorf("full sync_all lists %v, %s numbered %v; want two orders numbered 1 and 2", keys(orders), o5.UID(), got)
					}
				}
			}

			// The next new order still gets the next number: none was spent
			// on the repeated write.
			o7 := pos6.NewOrder(3)
			update(t, pos6, o7, revAnswer(o7.UID(), 1, 3, 1))
			if !tt.restart {
				expectNoGaps(t, pos5, pos6)
			}
		})
	}
}
