package storage

import (
	"errors"
	"slices"
	"testing"

	"possync/appliance"
)

// TestDecodeTruncated checks that every proper prefix of a valid value is
// rejected rather than decoded into garbage.
func TestDecodeTruncated(t *testing.T) {
	o := appliance.OrderRecord{Revision: 3, Nonce: `"n"`, State: appliance.StateDraft, Run: 2, Message: []byte(`{"a":1}`)}
	b := appliance.Broadcast{Templated: true, Prefix: []byte("p"), Suffix: []byte("s"),
		Targets: []appliance.Target{{Channel: "c", MessageID: 9}}}
	values := map[string]struct {
		v      []byte
		decode func([]byte) error
	}{
		"order":     {encodeOrder(&o), func(v []byte) error { return decodeOrder(v, &appliance.OrderRecord{}) }},
		"broadcast": {encodeBroadcast(&b), func(v []byte) error { return decodeBroadcast(v, &appliance.Broadcast{}) }},
		"session":   {encodeSession(&appliance.SessionRecord{OrderID: 300, RunID: 1}), func(v []byte) error { return decodeSession(v, &appliance.SessionRecord{}) }},
		"pos":       {encodePOS(&appliance.POSRecord{Session: 1, MessageID: 1 << 40, UserID: 2}), func(v []byte) error { return decodePOS(v, &appliance.POSRecord{}) }},
	}
	for name, tt := range values {
		if err := tt.decode(tt.v); err != nil {
			t.Errorf("decode %s(%x) = %v", name, tt.v, err)
		}
		for n := range len(tt.v) {
			if err := tt.decode(tt.v[:n]); !errors.Is(err, errBadValue) {
				t.Errorf("decode %s(%x) = %v, want errBadValue", name, tt.v[:n], err)
			}
		}
		if err := tt.decode(append(slices.Clone(tt.v), 0)); !errors.Is(err, errBadValue) {
			t.Errorf("decode %s with a trailing byte = %v, want errBadValue", name, err)
		}
	}
}
