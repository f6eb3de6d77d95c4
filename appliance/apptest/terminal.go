package apptest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// Routes of the Sync Server, as the Odoo 12 POS client builds them from the
// multi-session's "Sync Server" field (protocol.md §1, §7).
const (
	RouteUpdate = "/pos_multi_session_sync/update"
	RoutePing   = "/pos_longpolling/update"
	RoutePoll   = "/longpolling/poll"
)

// TerminalConfig describes one simulated Odoo 12 POS terminal (one browser
// tab with a POS session open).
type TerminalConfig struct {
	DB             string // session.db of the main Odoo
	MultiSessionID int64  // pos.config.multi_session_id
	POSID          int64  // pos.config.id
	UserID         int64  // pos.user.id
	SessionID      int64  // pos.session id
	LoginNumber    int64  // pos_session.login_number
	RunID          int64  // pos.multi_session_run_ID at start-up

	Name       string        // POS name in ms_info; "" = "POS<id>"
	UserName   string        // user name in ms_info; "" = "User <id>"
	Origin     string        // Origin header; "" = "http://odoo.test"
	DebugMode  string        // X-Debug-Mode header value; "" = header not sent
	RPCTimeout time.Duration // bound for one update/ping call; 0 = 10s
	PollRetry  time.Duration // delay after a failed poll; 0 = 50ms (the browser waits 10-30 s)
	Buffer     int           // capacity of the notification channel; 0 = 4096
	// Cursor is the bus cursor the poller starts with, as the Odoo 12
	// crosstab bus restores it from localStorage bus.<origin>.last, a key it
	// shares with the main Odoo's bus (§3.1, §9.3-1); 0 = none.
	Cursor int64
	// RootCAs are the CAs trusted for an https:// server URL; nil = the
	// system's.
	RootCAs *x509.CertPool
}

// Terminal is a simulated Odoo 12 POS client: it sends JSON-RPC requests the
// way the browser does (protocol.md §2), long-polls the bus on its two
// channels (§3.1) and tracks message_ID continuity like ms.js (§6.1).
//
// All methods are safe for concurrent use. Methods that talk to the server
// return errors instead of failing the test, so they can be used from
// goroutines; the poller reports protocol violations with tb.Errorf.
type Terminal struct {
	tb     testing.TB
	cfg    TerminalConfig
	client *http.Client
	ctx    context.Context // cancelled at cleanup; bounds every request
	stop   context.CancelFunc
	notes  chan Notification

	// mu guards the fields that follow.
	mu        sync.Mutex
	url       string
	runID     int64
	messageID int64 // pos.multi_session_message_ID as the client tracks it
	last      int64 // highest bus id seen
	gaps      []Gap
	pollErrs  []error
	pollStop  context.CancelFunc
	pollDone  chan struct{}
	polls     int // completed successful polls
}

// Gap is a bus message whose message_ID did not follow the client's counter
// (ms.js §6.1: the client then requests a full sync_all).
type Gap struct {
	BusID  int64
	Action string
	UID    string
	Want   int64 // message_ID the client expected (its counter + 1)
	Got    int64 // message_ID in the message
}

func (g Gap) String() string {
	return fmt.Sprintf("bus id %d %s %q: message_ID %d, want %d", g.BusID, g.Action, g.UID, g.Got, g.Want)
}

// NewTerminal returns a terminal talking to serverURL (no trailing slash;
// a trailing slash is kept verbatim, as the client does). It stops polling
// and closes its connections at tb.Cleanup.
func NewTerminal(tb testing.TB, serverURL string, cfg TerminalConfig) *Terminal {
	tb.Helper()
	if cfg.Name == "" {
		cfg.Name = fmt.Sprintf("POS%d", cfg.POSID)
	}
	if cfg.UserName == "" {
		cfg.UserName = fmt.Sprintf("User %d", cfg.UserID)
	}
	if cfg.Origin == "" {
		cfg.Origin = "http://odoo.test"
	}
	if cfg.RPCTimeout == 0 {
		cfg.RPCTimeout = 10 * time.Second
	}
	if cfg.PollRetry == 0 {
		cfg.PollRetry = 50 * time.Millisecond
	}
	if cfg.Buffer == 0 {
		cfg.Buffer = 4096
	}
	ctx, stop := context.WithCancel(context.Background())
	t := &Terminal{
		tb:  tb,
		cfg: cfg,
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8, MaxConnsPerHost: 0,
			TLSClientConfig: &tls.Config{RootCAs: cfg.RootCAs}}},
		ctx:   ctx,
		stop:  stop,
		notes: make(chan Notification, cfg.Buffer),
		url:   serverURL,
		runID: cfg.RunID,
		last:  cfg.Cursor,
	}
	tb.Cleanup(t.close)
	return t
}

func (t *Terminal) close() {
	t.StopPolling()
	t.stop()
	t.client.CloseIdleConnections()
}

// Config returns the terminal's configuration (with defaults filled in).
func (t *Terminal) Config() TerminalConfig { return t.cfg }

// String names the terminal in failure messages.
func (t *Terminal) String() string {
	return fmt.Sprintf("%s(db=%s ms=%d pos=%d)", t.cfg.Name, t.cfg.DB, t.cfg.MultiSessionID, t.cfg.POSID)
}

// URL returns the server URL the terminal talks to.
func (t *Terminal) URL() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.url
}

// SetURL points the terminal at another server (e.g. after Server.Restart).
// A running poller picks it up with its next poll; its last id is kept.
func (t *Terminal) SetURL(u string) {
	t.mu.Lock()
	t.url = u
	t.mu.Unlock()
}

// RunID returns the terminal's current pos.multi_session_run_ID.
func (t *Terminal) RunID() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.runID
}

// SetRunID changes the run_ID the terminal puts into sync_all and
// remove_order (as after the main Odoo started a new run, §5.4).
func (t *Terminal) SetRunID(run int64) {
	t.mu.Lock()
	t.runID = run
	t.mu.Unlock()
}

// MessageID returns the client's message_ID counter (§6.1).
func (t *Terminal) MessageID() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.messageID
}

// Last returns the highest bus notification id the poller has seen.
func (t *Terminal) Last() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last
}

// SetLast sets the poller's last id, as a client restoring it from
// localStorage would (§3.1, §9.3-1), or to simulate lost notifications.
func (t *Terminal) SetLast(last int64) {
	t.mu.Lock()
	t.last = last
	t.mu.Unlock()
}

// Gaps returns the message_ID gaps detected so far.
func (t *Terminal) Gaps() []Gap {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Gap(nil), t.gaps...)
}

// ClearGaps forgets the recorded gaps.
func (t *Terminal) ClearGaps() {
	t.mu.Lock()
	t.gaps = nil
	t.mu.Unlock()
}

// PollErrors returns the failed polls (transport errors, non-200 answers).
func (t *Terminal) PollErrors() []error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]error(nil), t.pollErrs...)
}

// Channel returns the bus channel name of this POS for name
// ("pos.longpolling" or "pos.multi_session"), exactly as the client builds it:
// JSON.stringify([db, name, String(pos_id)]).
func (t *Terminal) Channel(name string) string { return Channel(t.cfg.DB, name, t.cfg.POSID) }

// Channel builds a bus channel name like the client (no spaces).
func Channel(db, name string, posID int64) string {
	b, _ := json.Marshal([]string{db, name, fmt.Sprint(posID)})
	return string(b)
}

// RawResponse is one HTTP exchange, decoded as far as possible. Numbers in
// Result and Error are json.Number, so they keep their exact text.
type RawResponse struct {
	Status    int
	Header    http.Header
	Body      []byte
	Elapsed   time.Duration
	Err       error // transport error; the other fields are then empty
	RequestID int64 // id sent (0 for raw bodies)

	ID        any // "id" of the answer
	HasResult bool
	Result    any
	Error     *RPCError
	DecodeErr error // the body is not a JSON object
}

// RPCError is the "error" member of a JSON-RPC answer (§2.3).
type RPCError struct {
	Code    json.Number
	Message string
	Data    map[string]any
}

func (e *RPCError) Error() string {
	name, _ := e.Data["name"].(string)
	msg, _ := e.Data["message"].(string)
	return fmt.Sprintf("JSON-RPC error %s %q: %s: %s", e.Code, e.Message, name, msg)
}

// Failure returns nil if the exchange is a JSON-RPC success answer (HTTP 200,
// a result member, the request's id echoed), else an error describing it.
func (r RawResponse) Failure() error {
	switch {
	case r.Err != nil:
		return r.Err
	case r.Status != http.StatusOK:
		return fmt.Errorf("HTTP %d: %.300s", r.Status, r.Body)
	case r.DecodeErr != nil:
		return fmt.Errorf("undecodable answer: %v: %.300s", r.DecodeErr, r.Body)
	case r.Error != nil:
		return r.Error
	case !r.HasResult:
		return fmt.Errorf("answer has no result: %.300s", r.Body)
	case r.RequestID != 0 && fmt.Sprint(r.ID) != fmt.Sprint(r.RequestID):
		return fmt.Errorf("answer id %v, want %d", r.ID, r.RequestID)
	}
	return nil
}

// envelope is the JSON-RPC request exactly as odoo12 ajax.js builds it.
type envelope struct {
	JSONRPC string `json:"jsonrpc"`
	Method  string `json:"method"`
	Params  any    `json:"params"`
	ID      int64  `json:"id"`
}

// Call sends a JSON-RPC call to path as the browser does: POST,
// Content-Type application/json, {"jsonrpc":"2.0","method":"call",
// "params":params,"id":<random below 1e9>}.
func (t *Terminal) Call(path string, params any) RawResponse {
	return t.call(t.ctx, path, params)
}

func (t *Terminal) call(ctx context.Context, path string, params any) RawResponse {
	id := 1 + rand.Int64N(999_999_999)
	body, err := json.Marshal(envelope{JSONRPC: "2.0", Method: "call", Params: params, ID: id})
	if err != nil {
		return RawResponse{Err: fmt.Errorf("encode request: %w", err)}
	}
	r := t.do(ctx, http.MethodPost, path, body, http.Header{"Content-Type": {"application/json"}})
	r.RequestID = id
	return r
}

// Do sends a raw HTTP request to path with the browser's Origin (and
// X-Debug-Mode) headers plus header, and decodes the answer if it is JSON.
func (t *Terminal) Do(method, path string, body []byte, header http.Header) RawResponse {
	return t.do(t.ctx, method, path, body, header)
}

func (t *Terminal) do(ctx context.Context, method, path string, body []byte, header http.Header) RawResponse {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.cfg.RPCTimeout)
		defer cancel()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, t.URL()+path, rd)
	if err != nil {
		return RawResponse{Err: err}
	}
	req.Header.Set("Origin", t.cfg.Origin)
	if t.cfg.DebugMode != "" {
		req.Header.Set("X-Debug-Mode", t.cfg.DebugMode)
	}
	for k, vs := range header {
		req.Header[http.CanonicalHeaderKey(k)] = vs
	}
	start := time.Now()
	resp, err := t.client.Do(req)
	if err != nil {
		return RawResponse{Err: err, Elapsed: time.Since(start)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	r := RawResponse{Status: resp.StatusCode, Header: resp.Header, Body: b, Elapsed: time.Since(start)}
	if err != nil {
		r.Err = fmt.Errorf("read answer: %w", err)
		return r
	}
	r.decode()
	return r
}

func (r *RawResponse) decode() {
	var env map[string]json.RawMessage
	if err := DecodeJSON(r.Body, &env); err != nil {
		r.DecodeErr = err
		return
	}
	if env == nil {
		r.DecodeErr = fmt.Errorf("answer is null")
		return
	}
	if raw, ok := env["id"]; ok {
		_ = DecodeJSON(raw, &r.ID)
	}
	if raw, ok := env["result"]; ok {
		r.HasResult = true
		if err := DecodeJSON(raw, &r.Result); err != nil {
			r.DecodeErr = err
		}
	}
	if raw, ok := env["error"]; ok {
		var e struct {
			Code    json.Number    `json:"code"`
			Message string         `json:"message"`
			Data    map[string]any `json:"data"`
		}
		if err := DecodeJSON(raw, &e); err != nil {
			r.DecodeErr = fmt.Errorf("error member: %w", err)
			return
		}
		r.Error = &RPCError{Code: e.Code, Message: e.Message, Data: e.Data}
	}
}

// DecodeJSON decodes b into v with json.Decoder.UseNumber, so numbers keep
// their exact text, and rejects trailing data.
func DecodeJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data after JSON value")
	}
	return nil
}

// newNonce returns a nonce like ms.js: (Math.random()+1).toString(36).substring(7).
func newNonce() string {
	const digits = "0123456789abcdefghijklmnopqrstuvwxyz"
	n := 4 + rand.IntN(3)
	var sb strings.Builder
	for range n {
		sb.WriteByte(digits[rand.IntN(len(digits))])
	}
	return sb.String()
}
