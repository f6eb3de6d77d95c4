package storage

import (
	"testing"
	"time"

	"possync/appliance"
)

// FuzzDecode feeds arbitrary bytes to every value decoder and key parser
// of the store: none may panic or allocate more than its input holds
// (lengths are checked against the bytes left), and a decoded order
// re-encodes to a value that decodes to the same record.
func FuzzDecode(f *testing.F) {
	key := appliance.SessionKey{DB: "shop", ID: 3}
	f.Add(encodeSession(&appliance.SessionRecord{Key: key, OrderID: 7, RunID: 2}))
	f.Add(encodePOS(&appliance.POSRecord{Key: appliance.POSKey{DB: "shop", ID: 5}, Session: 3, MessageID: 17, UserID: 2}))
	f.Add(encodeOrder(&appliance.OrderRecord{Key: appliance.OrderKey{Session: key, UID: "00012-003-0007"}, Revision: 2,
		Nonce: `"q81zk"`, State: appliance.StateDraft, Run: 3, Updated: time.Unix(1700000000, 0),
		Message: []byte(`{"action":"update_order","data":{"uid":"00012-003-0007","revision_ID":2}}`)}))
	f.Add(encodeBroadcast(&appliance.Broadcast{FirstID: 9, At: time.Unix(1700000000, 0), Templated: true,
		Prefix: []byte(`{"action":"update_order","data":{"message_ID":`), Suffix: []byte(`}}`),
		Targets: []appliance.Target{{Channel: `["shop","pos.multi_session","5"]`, MessageID: 16}}}))
	f.Add(sessionKey(key))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, v []byte) {
		var s appliance.SessionRecord
		_ = decodeSession(v, &s)
		var p appliance.POSRecord
		_ = decodePOS(v, &p)
		var b appliance.Broadcast
		_ = decodeBroadcast(v, &b)
		_, _ = decodeLastBus(v)
		_, _ = parseSessionKey(v)
		_, _ = parsePOSKey(v)
		_, _ = parseBroadcastKey(v)
		var o appliance.OrderRecord
		if decodeOrder(v, &o) == nil {
			var o2 appliance.OrderRecord
			if err := decodeOrder(encodeOrder(&o), &o2); err != nil || o2.Revision != o.Revision ||
				string(o2.Message) != string(o.Message) || o2.Nonce != o.Nonce || o2.State != o.State {
				t.Errorf("order %+v re-encoded decodes to %+v, %v", o, o2, err)
			}
		}
	})
}
