package storagetest

import (
	"fmt"
	"math"
	"strings"
	"time"

	"possync/appliance"
)

// step is one action of a table case; exactly one field is set.
type step struct {
	commit *appliance.Batch
	purge  *appliance.Purge
	reopen bool // close and reopen the store (RunPersistent only)
}

// testCase is a sequence of steps and the snapshot they must leave.
type testCase struct {
	name  string
	steps []step
	want  appliance.Snapshot
}

// t0 has nanoseconds on purpose: stores need only keep milliseconds.
var t0 = time.Date(2024, 5, 1, 12, 30, 0, 123_456_789, time.UTC)

func skey(db string, id int64) appliance.SessionKey { return appliance.SessionKey{DB: db, ID: id} }

func okey(db string, session int64, uid string) appliance.OrderKey {
	return appliance.OrderKey{Session: skey(db, session), UID: uid}
}

func order(db string, session int64, uid string, rev int64, msg string) appliance.OrderRecord {
	return appliance.OrderRecord{
		Key:      okey(db, session, uid),
		Revision: rev,
		Nonce:    fmt.Sprintf(`"nonce-%d"`, rev),
		State:    appliance.StateDraft,
		Run:      1,
		Updated:  t0.Add(time.Duration(rev) * time.Second),
		Message:  []byte(msg),
	}
}

// broadcast returns a templated broadcast of n notifications from first.
func broadcast(first uint64, n int) appliance.Broadcast {
	b := appliance.Broadcast{
		FirstID:   first,
		At:        t0,
		Templated: true,
		Prefix:    []byte(`{"action":"update_order","message_ID":`),
		Suffix:    []byte(`,"data":{"uid":"00001-001-0001"}}`),
	}
	for i := range n {
		b.Targets = append(b.Targets, appliance.Target{
			Channel:   fmt.Sprintf(`["db","pos.multi_session",%d]`, i+1),
			MessageID: int64(first) + int64(i),
		})
	}
	return b
}

func commit(b appliance.Batch) step { return step{commit: &b} }

func purge(p appliance.Purge) step { return step{purge: &p} }

var reopen = step{reopen: true}

func cases() []testCase {
	plain := appliance.Broadcast{
		FirstID: 4,
		At:      t0,
		Prefix:  []byte(`{"action":"sync_all"}`),
		Targets: []appliance.Target{{Channel: `["db","pos.multi_session",1]`}},
	}
	allKinds := appliance.Batch{
		Sessions: []appliance.SessionRecord{{Key: skey("db", 1), OrderID: 7, RunID: 3}},
		POS: []appliance.POSRecord{
			{Key: appliance.POSKey{DB: "db", ID: 1}, Session: 1, MessageID: 42, UserID: 2},
			{Key: appliance.POSKey{DB: "db", ID: 2}, Session: 1},
		},
		Orders: []appliance.OrderRecord{
			order("db", 1, "00001-001-0001", 1, `{"lines":[[0,0,{"qty":1}]]}`),
			func() appliance.OrderRecord {
				o := order("db", 1, "00002-001-0001", 4, `{"uid":"00002-001-0001"}`)
				o.State = appliance.StateUnpaid
				return o
			}(),
			func() appliance.OrderRecord {
				o := order("db", 1, "00003-001-0001", 2, "")
				o.State, o.Nonce = appliance.StateDeleted, ""
				return o
			}(),
		},
		Broadcasts: []appliance.Broadcast{broadcast(1, 3), plain},
	}
	a, b, c := order("db", 1, "a", 1, `{"a":1}`), order("db", 1, "b", 1, `{"b":1}`), order("db", 2, "c", 1, `{"c":1}`)
	return []testCase{
		{name: "empty store"},
		{
			name:  "empty batch is a no-op",
			steps: []step{commit(appliance.Batch{}), reopen, commit(appliance.Batch{})},
		},
		{
			name:  "all record kinds",
			steps: []step{commit(allKinds)},
			want: appliance.Snapshot{
				Sessions: allKinds.Sessions, POS: allKinds.POS, Orders: allKinds.Orders,
				Broadcasts: allKinds.Broadcasts, LastBusID: 4,
			},
		},
		{
			name: "overwrite",
			steps: []step{
				commit(allKinds),
				commit(appliance.Batch{
					Sessions: []appliance.SessionRecord{{Key: skey("db", 1), OrderID: 8, RunID: 4}},
					POS:      []appliance.POSRecord{{Key: appliance.POSKey{DB: "db", ID: 2}, Session: 1, MessageID: 1, UserID: 5}},
					Orders:   []appliance.OrderRecord{order("db", 1, "00001-001-0001", 2, `{"lines":[]}`)},
				}),
				reopen,
				commit(appliance.Batch{Broadcasts: []appliance.Broadcast{broadcast(4, 2)}}),
			},
			want: appliance.Snapshot{
				Sessions: []appliance.SessionRecord{{Key: skey("db", 1), OrderID: 8, RunID: 4}},
				POS: []appliance.POSRecord{
					allKinds.POS[0],
					{Key: appliance.POSKey{DB: "db", ID: 2}, Session: 1, MessageID: 1, UserID: 5},
				},
				Orders: []appliance.OrderRecord{
					order("db", 1, "00001-001-0001", 2, `{"lines":[]}`), allKinds.Orders[1], allKinds.Orders[2],
				},
				Broadcasts: []appliance.Broadcast{broadcast(1, 3), broadcast(4, 2)},
				LastBusID:  5,
			},
		},
		{
			name: "last bus id never decreases",
			steps: []step{
				commit(appliance.Batch{Broadcasts: []appliance.Broadcast{broadcast(10, 3)}}),
				commit(appliance.Batch{Broadcasts: []appliance.Broadcast{broadcast(5, 1)}}),
				reopen,
				commit(appliance.Batch{Broadcasts: []appliance.Broadcast{broadcast(7, 1)}}),
			},
			want: appliance.Snapshot{
				Broadcasts: []appliance.Broadcast{broadcast(5, 1), broadcast(7, 1), broadcast(10, 3)},
				LastBusID:  12,
			},
		},
		{
			name: "bus id floor raises last bus id durably, never lowers it",
			steps: []step{
				commit(appliance.Batch{Broadcasts: []appliance.Broadcast{broadcast(1, 2)}}),
				commit(appliance.Batch{BusIDFloor: 1000}),
				reopen,
				commit(appliance.Batch{BusIDFloor: 500}),
				reopen,
			},
			want: appliance.Snapshot{Broadcasts: []appliance.Broadcast{broadcast(1, 2)}, LastBusID: 1000},
		},
		{
			name: "broadcasts without targets hold no ids",
			steps: []step{commit(appliance.Batch{Broadcasts: []appliance.Broadcast{
				broadcast(1, 2), {FirstID: 0, At: t0}, {FirstID: 9, Prefix: []byte(`{}`)},
			}})},
			want: appliance.Snapshot{
				Broadcasts: []appliance.Broadcast{{FirstID: 0, At: t0}, broadcast(1, 2), {FirstID: 9, Prefix: []byte(`{}`)}},
				LastBusID:  2,
			},
		},
		{
			name: "purge",
			steps: []step{
				commit(appliance.Batch{
					Orders:     []appliance.OrderRecord{a, b, c},
					Broadcasts: []appliance.Broadcast{broadcast(1, 3), broadcast(4, 2), broadcast(6, 2)},
				}),
				// [1..3] goes; [4..5] straddles 5 and stays.
				purge(appliance.Purge{BroadcastsBefore: 5, Orders: []appliance.OrderKey{a.Key, okey("db", 1, "absent")}}),
			},
			want: appliance.Snapshot{
				Orders:     []appliance.OrderRecord{b, c},
				Broadcasts: []appliance.Broadcast{broadcast(4, 2), broadcast(6, 2)},
				LastBusID:  7,
			},
		},
		{
			name: "purge everything keeps last bus id",
			steps: []step{
				commit(appliance.Batch{Orders: []appliance.OrderRecord{a}, Broadcasts: []appliance.Broadcast{broadcast(1, 3)}}),
				purge(appliance.Purge{BroadcastsBefore: 100, Orders: []appliance.OrderKey{a.Key}}),
				reopen,
				commit(appliance.Batch{Broadcasts: []appliance.Broadcast{broadcast(2, 1)}}),
				purge(appliance.Purge{}),
			},
			want: appliance.Snapshot{Broadcasts: []appliance.Broadcast{broadcast(2, 1)}, LastBusID: 3},
		},
		{
			name:  "purge of an empty store",
			steps: []step{purge(appliance.Purge{BroadcastsBefore: math.MaxUint64, Orders: []appliance.OrderKey{a.Key}})},
		},
		namesCase(),
		bytesCase(),
		timesCase(),
	}
}

// namesCase writes records under database names and uids that a naive key
// encoding would confuse: prefixes of each other, NUL bytes, separators,
// non-UTF-8, long names, extreme ids.
func namesCase() testCase {
	dbs := []string{
		"", "a", "a\x00", "\x00a", "a\x00\x00\x00\x00\x00\x00\x00\x01", "a\x00\x00\x00\x00\x00\x00\x00\x01u",
		"a/b", `a\b`, "a b", "ä", "日本語", "\xff\xfe", strings.Repeat("x", 300),
	}
	ids := []int64{math.MinInt64, -1, 0, 1, 256, math.MaxInt64}
	uids := []string{"", "u", "u\x00", "\x00u", "\x00\x00\x00\x00\x00\x00\x00\x01u", "00001-001-0001", "ü/ü"}
	var batch appliance.Batch
	n := int64(0)
	for _, db := range dbs {
		for _, id := range ids {
			n++
			batch.Sessions = append(batch.Sessions, appliance.SessionRecord{Key: skey(db, id), OrderID: n, RunID: -n})
			batch.POS = append(batch.POS, appliance.POSRecord{Key: appliance.POSKey{DB: db, ID: id}, Session: id, MessageID: n})
			for _, uid := range uids {
				n++
				batch.Orders = append(batch.Orders, order(db, id, uid, n, fmt.Sprintf(`{"n":%d}`, n)))
			}
		}
	}
	return testCase{
		name:  "names and uids do not collide",
		steps: []step{commit(batch)},
		want:  appliance.Snapshot{Sessions: batch.Sessions, POS: batch.POS, Orders: batch.Orders},
	}
}

// bytesCase checks that messages and broadcast bodies round-trip byte for
// byte: no re-encoding of unicode, numbers or whitespace.
func bytesCase() testCase {
	msgs := []string{
		`{"name":"Café ☕ 日本語","escaped":"\u00e9\ud83d\ude00","emoji":"😀"}`,
		`{"amount":123456789012345678901234567890,"tiny":1e-400,"neg":-0.0,"f":0.1000000000000000055511151231257827}`,
		" {\"spaces\" :  [ 1 ,\t2 ]}  \n",
		"\x00\xff not JSON, not UTF-8 \xc3\x28",
		`{"big":"` + strings.Repeat("0123456789abcdef", 16<<10) + `"}`, // 256 KiB
		"",
	}
	var batch appliance.Batch
	for i, m := range msgs {
		o := order("db", 1, fmt.Sprintf("u%d", i), int64(i+1), m)
		o.Nonce = `"ñ\u0000☃"`
		batch.Orders = append(batch.Orders, o)
	}
	batch.Broadcasts = []appliance.Broadcast{
		{FirstID: 1, At: t0, Templated: true, Prefix: []byte(`{"msg":"ñ","id":`), Suffix: []byte("}\x00\xff"),
			Targets: []appliance.Target{{Channel: `["Café","日本"]`, MessageID: math.MaxInt64}, {Channel: "", MessageID: math.MinInt64}}},
		{FirstID: 3, At: t0, Prefix: []byte(msgs[4]), Targets: []appliance.Target{{Channel: "c"}}},
	}
	return testCase{
		name:  "messages round-trip byte for byte",
		steps: []step{commit(batch)},
		want:  appliance.Snapshot{Orders: batch.Orders, Broadcasts: batch.Broadcasts, LastBusID: 3},
	}
}

// timesCase checks times far from now, and the zero time.
func timesCase() testCase {
	times := []time.Time{
		{},
		time.Unix(0, 0),
		time.Date(1969, 12, 31, 23, 59, 59, 999_000_000, time.UTC),
		t0.In(time.FixedZone("UTC+5", 5*3600)),
		time.Date(2200, 1, 1, 0, 0, 0, 1_000_000, time.UTC),
	}
	var batch appliance.Batch
	for i, tm := range times {
		o := order("db", 1, fmt.Sprintf("t%d", i), 1, `{}`)
		o.Updated = tm
		batch.Orders = append(batch.Orders, o)
		bc := broadcast(uint64(i+1), 1)
		bc.At = tm
		batch.Broadcasts = append(batch.Broadcasts, bc)
	}
	return testCase{
		name:  "times",
		steps: []step{commit(batch)},
		want:  appliance.Snapshot{Orders: batch.Orders, Broadcasts: batch.Broadcasts, LastBusID: uint64(len(times))},
	}
}
