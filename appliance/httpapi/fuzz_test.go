package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"possync/appliance/engine"
	"possync/storage/memstore"
)

// FuzzEnvelope sends arbitrary bodies to the three JSON-RPC routes
// through the real handler: none may panic, and every answer is a JSON
// body (a result or a JSON-RPC error naming what was wrong).
func FuzzEnvelope(f *testing.F) {
	f.Add(uint8(0), []byte(`{"jsonrpc":"2.0","method":"call","params":{"multi_session_id":1,"dbname":"shop","user_ID":2,"message":{"action":"sync_all","session_id":12,"login_number":3,"immediate_rerendering":true,"data":{"run_ID":1,"pos_id":5,"nonce":"f0p2s"}}},"id":915127480}`))
	f.Add(uint8(0), []byte(`{"jsonrpc":"2.0","method":"call","params":{"multi_session_id":1,"dbname":"shop","user_ID":2,"message":{"action":"update_order","session_id":12,"login_number":3,"data":{"uid":"00012-003-0007","sequence_number":7,"revision_ID":1,"run_ID":1,"pos_id":5,"nonce":"q81zk","lines":[[0,0,{"uid":"00012-003-0007-1","qty":3}]]}}},"id":1}`))
	f.Add(uint8(1), []byte(`{"jsonrpc":"2.0","method":"call","params":{"message":"PING","pos_id":5,"db_name":"shop"},"id":2}`))
	f.Add(uint8(2), []byte(`{"jsonrpc":"2.0","method":"call","params":{"channels":["[\"shop\",\"pos.multi_session\",\"5\"]"],"last":0,"options":{}},"id":3}`))
	f.Add(uint8(0), []byte(`[1,2,3]`))
	f.Add(uint8(0), []byte(`{"id":{"a":[]},"params":null}`))
	quiet := slog.New(slog.DiscardHandler)
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		e := engine.New(memstore.New(), engine.Options{Logger: quiet, PurgeInterval: -1})
		if err := e.Open(context.Background()); err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		s := New(e, Options{Logger: quiet, PollHold: time.Millisecond})
		var req fasthttp.Request
		req.Header.SetMethod(fasthttp.MethodPost)
		req.SetRequestURI([]string{pathUpdate, pathPing, pathPoll}[int(route)%3])
		req.Header.SetContentType("application/json")
		req.SetBody(body)
		var ctx fasthttp.RequestCtx
		ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}, nil)
		s.handle(&ctx)
		if out := ctx.Response.Body(); !json.Valid(out) {
			t.Fatalf("answer to %q is not JSON: %q", body, out)
		}
	})
}

// envelopeAgrees fails when splitEnvelope vouches for a body that
// json.Unmarshal into an envelope reads differently: where the params it
// returns is valid JSON, encoding/json must return the same id and params;
// where it is not (only an object params is left unvalidated), the body is
// not JSON and encoding/json must refuse it.
func envelopeAgrees(t *testing.T, body []byte) {
	t.Helper()
	env, ok := splitEnvelope(body)
	if !ok {
		return
	}
	var want envelope
	err := json.Unmarshal(body, &want)
	if env.Params != nil && !json.Valid(env.Params) {
		if env.Params[0] != '{' || err == nil {
			t.Fatalf("splitEnvelope(%q) passed params %q unvalidated; json.Unmarshal: %v", body, env.Params, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("splitEnvelope(%q) = ok, json.Unmarshal: %v", body, err)
	}
	if !bytes.Equal(env.ID, want.ID) || !bytes.Equal(env.Params, want.Params) {
		t.Fatalf("splitEnvelope(%q) = id %q params %q; json.Unmarshal: id %q params %q", body, env.ID, env.Params, want.ID, want.Params)
	}
}

// FuzzSplitEnvelope: the one-pass envelope scan agrees with encoding/json.
func FuzzSplitEnvelope(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","method":"call","params":{"channels":["a"],"last":3},"id":7}`,
		` { "ID" : "x" , "Params" : {"a":"}"} , "id" : [1,{"b":null}] } `,
		`{"params":{"a":1]},"id":1}`, `{"params":[1,2}`, `{"params":tru,"id":1}`,
		`{"id":1,"id":2,"params":null}`, `{"params":{"a":tru},"params":{}}`, `{}`, `{"a\u0041":1}`, `{"id":1}x`, `[1]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(envelopeAgrees)
}

// TestSplitEnvelope: the scan takes Odoo's bodies and the corner cases
// encoding/json allows, and leaves to encoding/json what it cannot vouch for.
func TestSplitEnvelope(t *testing.T) {
	for _, c := range []struct {
		body, id, params string
		ok               bool
	}{
		{`{"jsonrpc":"2.0","method":"call","params":{"last":0},"id":915}`, `915`, `{"last":0}`, true},
		{` {"ID":"a","Params":{"x":"}]"},"id":{"n":[1]}} `, `{"n":[1]}`, `{"x":"}]"}`, true},
		{`{"params":null,"id":null}`, `null`, `null`, true},
		{`{"params":{"a":tru},"id":1}`, `1`, `{"a":tru}`, true}, // the engine refuses params
		{`{"params":{"a":1]},"id":1}`, ``, ``, false},
		{`{"params":tru,"id":1}`, ``, ``, false},
		{`{"id":1,"method":nul}`, ``, ``, false},
		{`{"p\u0061rams":{}}`, ``, ``, false},
		{`{"id":1} {}`, ``, ``, false},
		{`{"id":1,}`, ``, ``, false},
		// A later params replaces an earlier one, but an earlier invalid
		// one still makes the body invalid JSON.
		{`{"params":{"a":tru},"Params":{},"id":1}`, ``, ``, false},
		{`{"params":{"a":[1}],"params":{"b":2},"id":1}`, ``, ``, false},
		{`{"Params":{"a":1},"params":{"b":2},"id":1}`, `1`, `{"b":2}`, true},
		{`[{"id":1}]`, ``, ``, false},
	} {
		env, ok := splitEnvelope([]byte(c.body))
		if ok != c.ok || (ok && (string(env.ID) != c.id || string(env.Params) != c.params)) {
			t.Errorf("splitEnvelope(%s) = id %q params %q ok %v; want %q %q %v", c.body, env.ID, env.Params, ok, c.id, c.params, c.ok)
		}
		envelopeAgrees(t, []byte(c.body))
	}
}
