// Package httpapi serves the Sync Server's HTTP API on fasthttp, exactly as
// the unmodified Odoo 12 POS client speaks it (shared/protocol.md §2, §3):
//
//	POST /pos_multi_session_sync/update  JSON-RPC: order sync messages
//	POST /pos_longpolling/update         JSON-RPC: PING → 1, "PONG" on the bus
//	POST /longpolling/poll               JSON-RPC: Odoo bus long-poll
//	GET  /                               status page for shop staff
//	GET  /healthz                        JSON health check
//
// Every response carries Access-Control-Allow-Origin: *, and OPTIONS
// preflights are answered on every path (decision 8). Errors are JSON-RPC
// errors in Odoo 12's shape with data.name, data.message, data.arguments and
// data.debug, so the client's send queue never stalls (§2.3). The mapping
// from appliance error codes to names and statuses lives in errors.go.
//
// A long-poll parks its handler goroutine on a channel (no busy-waiting)
// until a notification for one of its channels is published, the hold time
// passes, or the server shuts down.
package httpapi
