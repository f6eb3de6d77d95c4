package httpapi

import (
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
