package storage

import (
	"bytes"
	"errors"
	"math"
	"testing"

	"possync/appliance"
)

func TestOrderKeyRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		key  appliance.OrderKey
	}{
		{"plain", appliance.OrderKey{Session: appliance.SessionKey{DB: "odoo", ID: 1}, UID: "00001-001-0001"}},
		{"empty", appliance.OrderKey{}},
		{"nul bytes", appliance.OrderKey{Session: appliance.SessionKey{DB: "a\x00b", ID: -1}, UID: "\x00"}},
		{"long db", appliance.OrderKey{Session: appliance.SessionKey{DB: string(make([]byte, 1000)), ID: math.MinInt64}, UID: "u"}},
		{"max id", appliance.OrderKey{Session: appliance.SessionKey{DB: "日本", ID: math.MaxInt64}, UID: "ü"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseOrderKey(orderKey(tt.key))
			if err != nil || got != tt.key {
				t.Errorf("parseOrderKey(orderKey(%+v)) = %+v, %v, want the same key", tt.key, got, err)
			}
		})
	}
}

// TestKeyOrder checks that session keys sort by database, then id,
// negative ids included, and that broadcast keys sort by FirstID.
func TestKeyOrder(t *testing.T) {
	sessions := []appliance.SessionKey{
		{DB: "a", ID: math.MinInt64}, {DB: "a", ID: -1}, {DB: "a", ID: 0}, {DB: "a", ID: 1},
		{DB: "a", ID: 256}, {DB: "a", ID: math.MaxInt64},
	}
	for i := 1; i < len(sessions); i++ {
		if a, b := sessionKey(sessions[i-1]), sessionKey(sessions[i]); bytes.Compare(a, b) >= 0 {
			t.Errorf("sessionKey(%+v) = %x >= sessionKey(%+v) = %x", sessions[i-1], a, sessions[i], b)
		}
	}
	ids := []uint64{0, 1, 255, 256, 1 << 32, math.MaxUint64}
	for i := 1; i < len(ids); i++ {
		if a, b := broadcastKey(ids[i-1]), broadcastKey(ids[i]); bytes.Compare(a, b) >= 0 {
			t.Errorf("broadcastKey(%d) = %x >= broadcastKey(%d) = %x", ids[i-1], a, ids[i], b)
		}
	}
}

func TestParseBadKeys(t *testing.T) {
	keys := [][]byte{
		{kindSession},
		{kindSession, 5, 'a'},                              // name shorter than its length
		{kindSession, 1, 'a', 0, 0, 0},                     // id truncated
		{kindSession, 1, 'a', 0, 0, 0, 0, 0, 0, 0, 0, 'x'}, // trailing bytes
		{kindSession, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, // varint overflow
	}
	for _, k := range keys {
		if got, err := parseSessionKey(k); !errors.Is(err, errBadKey) {
			t.Errorf("parseSessionKey(%x) = %+v, %v, want errBadKey", k, got, err)
		}
	}
	if _, err := parseBroadcastKey([]byte{kindBroadcast, 1}); !errors.Is(err, errBadKey) {
		t.Errorf("parseBroadcastKey(short) = %v, want errBadKey", err)
	}
}

// TestKeyAllocs is the allocation budget of key encoding, on the path of
// every Commit: one allocation per key.
func TestKeyAllocs(t *testing.T) {
	k := appliance.OrderKey{Session: appliance.SessionKey{DB: "odoo", ID: 1}, UID: "00001-001-0001"}
	if n := testing.AllocsPerRun(100, func() { _ = orderKey(k) }); n > 1 {
		t.Errorf("orderKey allocates %v times, want 1", n)
	}
	o := appliance.OrderRecord{Key: k, Nonce: `"n"`, State: appliance.StateDraft, Message: make([]byte, 3000)}
	if n := testing.AllocsPerRun(100, func() { _ = encodeOrder(&o) }); n > 2 {
		t.Errorf("encodeOrder allocates %v times, want at most 2", n)
	}
}
