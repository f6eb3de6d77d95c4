package engine

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"possync/appliance"
	"possync/storage/memstore"
)

// Real client messages (protocol.md §4, as ms.js@12.0 sends them), used
// as seeds: each wrapped in the params of /pos_multi_session_sync/update.
var fuzzMessages = []string{
	`{"action":"sync_all","session_id":12,"login_number":3,"immediate_rerendering":true,"data":{"run_ID":1,"pos_id":5,"nonce":"f0p2s"}}`,
	`{"action":"sync_all","session_id":12,"login_number":3,"uid":"00012-003-0007","data":{"run_ID":1,"pos_id":5,"nonce":"f0p2t"}}`,
	`{"action":"update_order","session_id":12,"login_number":3,"data":{"uid":"00012-003-0007","sequence_number":7,"revision_ID":1,"run_ID":1,"pos_id":5,"nonce":"q81zk","new_order":true,"lines":[[0,0,{"uid":"00012-003-0007-1","product_id":50,"qty":3,"price_unit":2.5}]],"name":"Order 00012-003-0007","amount_total":7.5}}`,
	`{"action":"update_order","session_id":12,"login_number":3,"data":{"uid":"00012-003-0001","sequence_number":1,"revision_ID":1,"run_ID":1,"pos_id":5,"nonce":"zz","lines":[[0,0,{"uid":"00012-003-0001-1","qty":1}],[0,0,{"uid":"00012-003-0001-2","qty":"x"}]]}}`,
	`{"action":"remove_order","session_id":12,"login_number":3,"data":{"uid":"00012-003-0001","revision_ID":1,"finalized":true,"run_ID":1,"pos_id":5,"nonce":"r1"}}`,
	`{"action":"remove_order","session_id":12,"login_number":3,"data":{"uid":"00012-003-0009","revision_ID":1,"finalized":true,"run_ID":1,"order_data":"{\"id\":\"00012-003-0009\",\"data\":{\"uid\":\"00012-003-0009\",\"sequence_number\":9}}"}}`,
	`{"action":"request_sync_all","session_id":12,"login_number":3,"data":{"run_ID":1,"pos_id":5,"nonce":"x"}}`,
}

func fuzzParams(msg string) []byte {
	return []byte(`{"multi_session_id":1,"dbname":"shop","user_ID":2,"message":` + msg + `}`)
}

// FuzzUpdate sends arbitrary params to Engine.Update on a store that
// already holds an order: no input may panic, and an input that is
// refused (any error) leaves the stored state exactly as it was.
func FuzzUpdate(f *testing.F) {
	for _, m := range fuzzMessages {
		f.Add(fuzzParams(m))
	}
	f.Add([]byte(`{"multi_session_id":1e400,"dbname":"shop","user_ID":2,"message":{}}`))
	f.Add([]byte(`{"multi_session_id":-1,"dbname":"","user_ID":null,"message":{"action":"update_order","data":{"run_ID":9223372036854775807}}}`))
	f.Fuzz(func(t *testing.T, params []byte) {
		ctx := context.Background()
		store := memstore.New()
		e := openEngine(t, store, Options{})
		if _, err := e.Update(ctx, fuzzParams(fuzzMessages[0])); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Update(ctx, fuzzParams(fuzzMessages[2])); err != nil {
			t.Fatal(err)
		}
		before, err := store.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		res, err := e.Update(ctx, params)
		if err != nil {
			if c := appliance.ErrorCode(err); c != appliance.EINVALID {
				t.Fatalf("Update(%s) = %v (code %q), want EINVALID for bad input", params, err, c)
			}
			after, lerr := store.Load(ctx)
			if lerr != nil {
				t.Fatal(lerr)
			}
			if !reflect.DeepEqual(before, after) {
				t.Fatalf("refused Update(%s) = %v changed the store", params, err)
			}
			return
		}
		if !json.Valid(res) {
			t.Fatalf("Update(%s) answered invalid JSON %s", params, res)
		}
	})
}

// FuzzPollParams feeds arbitrary params to the long-poll and PING
// parsers: no panic, and PING either answers or refuses with EINVALID.
func FuzzPollParams(f *testing.F) {
	f.Add([]byte(`{"channels":["[\"shop\",\"pos.multi_session\",\"5\"]","[\"shop\",\"pos.longpolling\",\"5\"]"],"last":0,"options":{}}`))
	f.Add([]byte(`{"channels":[],"last":"17"}`))
	f.Add([]byte(`{"channels":["x"],"last":-5}`))
	f.Add([]byte(`{"message":"PING","pos_id":5,"db_name":"shop"}`))
	f.Fuzz(func(t *testing.T, params []byte) {
		e := openEngine(t, memstore.New(), Options{})
		_, _ = e.ParsePoll(params)
		res, err := e.Ping(context.Background(), params)
		if err != nil && appliance.ErrorCode(err) != appliance.EINVALID {
			t.Fatalf("Ping(%s) = %v, want an answer or EINVALID", params, err)
		}
		if err == nil && !json.Valid(res) {
			t.Fatalf("Ping(%s) answered invalid JSON %s", params, res)
		}
	})
}
