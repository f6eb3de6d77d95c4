// Package httpapi serves the Sync Server's HTTP API on fasthttp, exactly as
// the unmodified Odoo 12 POS client speaks it (shared/protocol.md §2, §3):
//
//	POST /pos_multi_session_sync/update  JSON-RPC: order sync messages
//	POST /pos_longpolling/update         JSON-RPC: PING → 1, "PONG" on the bus
//	POST /longpolling/poll               JSON-RPC: Odoo bus long-poll
//	GET  /                               status page for shop staff
//	GET  /healthz                        JSON health check
//
// Every request is first checked against the access rules: a client
// address outside Options.AllowedNetworks is answered 403 by the listener
// before fasthttp sees the connection (refusenet.go), so its body is never
// waited for; an Origin outside Options.AllowedOrigins gets 403 from the
// handler without its body being parsed (access.go). Every other
// response carries Access-Control-Allow-Origin (* when no origins are
// configured, else the allowed origin echoed), and OPTIONS preflights are
// answered on every path (decision 8). Errors are JSON-RPC
// errors in Odoo 12's shape with data.name, data.message, data.arguments and
// data.debug, so the client's send queue never stalls (§2.3). The mapping
// from appliance error codes to names and statuses lives in errors.go.
//
// A long-poll parks its handler goroutine on a channel (no busy-waiting)
// until a notification for one of its channels is published, the hold time
// passes, its client goes away (pollwatch.go), its client address parks
// more than Options.MaxPollsPerClient polls, or half of Options.MaxConns
// (the oldest is answered with a LimitReached error, so its client backs
// off instead of coming straight back), or the server shuts down.
//
// The server owns its listener (listener.go): temporary accept errors are
// retried, connections beyond Options.MaxConns get HTTP 503 with a JSON-RPC
// error and CORS headers, and a broken listener is reported by Failed.
// GET /healthz answers 503 "unhealthy" or "degraded" with a detail when the
// engine is stuck, accepting fails, or the store cannot take writes.
package httpapi
