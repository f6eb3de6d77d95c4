package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/valyala/fasthttp"

	"possync/appliance"
	"possync/appliance/internal/jsonx"
)

const (
	pathUpdate     = "/pos_multi_session_sync/update"
	pathPing       = "/pos_longpolling/update"
	pathPoll       = "/longpolling/poll"
	pathStatusJSON = "/status.json"
	pathMetrics    = "/metrics"
)

func setCORS(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.Set("Access-Control-Allow-Origin", "*")
}

// corsAllowMethods and corsAllowHeaders are granted to every preflight
// (protocol.md §3.5, the reference nginx list).
const (
	corsAllowMethods = "GET, POST, OPTIONS"
	corsAllowHeaders = "DNT,X-CustomHeader,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Content-Range,Range,X-Debug-Mode,X-Openerp-Session-Id"
)

// preflight answers OPTIONS as the reference nginx setup does (§3.5), plus
// Chrome's Private Network Access opt-in for a LAN box called from a public
// Odoo origin.
func preflight(ctx *fasthttp.RequestCtx) {
	h := &ctx.Response.Header
	h.Set("Access-Control-Allow-Methods", corsAllowMethods)
	h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
	h.Set("Access-Control-Max-Age", "1728000")
	if string(ctx.Request.Header.Peek("Access-Control-Request-Private-Network")) == "true" {
		h.Set("Access-Control-Allow-Private-Network", "true")
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	path := string(ctx.Path())
	method := string(ctx.Method())
	switch {
	case !s.check(ctx):
		// refused before the body is read (access.go)
	case method == fasthttp.MethodOptions:
		preflight(ctx)
	case path == pathUpdate || path == pathPing || path == pathPoll:
		if method != fasthttp.MethodPost {
			ctx.Response.Header.Set("Allow", "POST, OPTIONS")
			s.writeError(ctx, nil, appliance.Errorf(appliance.EINVALID, "%s takes POST with a JSON-RPC body, not %s", path, method))
			ctx.SetStatusCode(fasthttp.StatusMethodNotAllowed)
			break
		}
		s.rpc(ctx, path)
	case path == "/" || path == "/index.html":
		s.statusPage(ctx)
	case path == "/healthz":
		s.health(ctx)
	case path == pathStatusJSON:
		s.statusJSON(ctx)
	case path == pathMetrics:
		s.metricsPage(ctx)
	case path == pathCACert:
		s.caCert(ctx)
	case path == pathBackup:
		s.backup(ctx)
	case path == pathAdminUpdate:
		s.admin(ctx)
	default:
		s.writeError(ctx, nil, appliance.Errorf(appliance.ENOTFOUND, "no route %s %s (possync serves %s, %s and %s)", method, path, pathUpdate, pathPoll, pathPing))
	}
	if s.log.Enabled(ctx, slogDebug) {
		s.log.Debug("request", "method", method, "path", path, "status", ctx.Response.StatusCode(),
			"bytes_in", ctx.Request.Header.ContentLength(), "bytes_out", len(ctx.Response.Body()),
			"ms", float64(time.Since(start).Microseconds())/1000, "remote", ctx.RemoteAddr().String())
	}
}

func (s *Server) rpc(ctx *fasthttp.RequestCtx, path string) {
	body, ok := s.readBody(ctx)
	if !ok {
		return
	}
	if at := invalidUTF8(body); at >= 0 {
		// encoding/json would keep the bytes inside raw fields, store them
		// and hand them to every till: Odoo's and the browsers' JSON
		// parsers refuse such text (RFC 8259 §8.1: JSON text is UTF-8).
		s.writeError(ctx, nil, appliance.Errorf(appliance.EINVALID, "request body is not valid UTF-8 at byte %d (JSON text must be UTF-8, RFC 8259 §8.1)", at))
		return
	}
	env, err := parseEnvelope(body)
	if err != nil {
		s.writeError(ctx, nil, appliance.Errorf(appliance.EINVALID, "request body is not a JSON-RPC object: %s", jsonx.ErrorAt(err, "the body")))
		return
	}
	if env.Params == nil || string(env.Params) == "null" {
		env.Params = json.RawMessage("{}")
	}
	var result json.RawMessage
	switch path {
	case pathUpdate:
		result, err = s.eng.Update(ctx, env.Params)
	case pathPing:
		result, err = s.eng.Ping(ctx, env.Params)
	case pathPoll:
		s.poll(ctx, env)
		return
	}
	if err != nil {
		s.writeError(ctx, env.ID, err)
		return
	}
	s.writeResult(ctx, env.ID, result)
}

func (s *Server) poll(ctx *fasthttp.RequestCtx, env envelope) {
	pp, err := s.eng.ParsePoll(env.Params)
	if err != nil {
		s.writeError(ctx, env.ID, err)
		return
	}
	// The poll's own context, cancelled when its client leaves or when the
	// client parks too many polls (pollwatch.go). It does not derive from
	// ctx: fasthttp's Done is server shutdown, which wakes polls anyway
	// (Close calls StopPolls), and deriving from a foreign context costs a
	// goroutine per poll.
	pctx, cancel := context.WithCancel(context.Background())
	parked := s.watch.park(remoteHost(ctx.RemoteAddr()), ctx.Conn(), cancel)
	notes := s.eng.Poll(pctx, pp, s.opts.PollHold, s.opts.Replay)
	s.watch.leave(parked)
	cancel()
	if len(notes) == 0 && parked.capped.Load() {
		// An error, not []: the client waits 10-30 s before its next poll
		// instead of coming straight back to evict another (pollwatch.go).
		s.writeError(ctx, env.ID, appliance.Errorf(appliance.ELIMIT, "%s", s.capMsg).WithValue(remoteHost(ctx.RemoteAddr())))
		return
	}
	// The answer is rendered once, envelope included, straight into
	// fasthttp's pooled body buffer (taken with SwapBody, handed back
	// filled): a burst of N woken polls allocates no N copies of the
	// message, and with ReduceMemoryUsage fasthttp returns the buffer to
	// its pool once the answer is written, so a waiting connection holds
	// none.
	size := 64 + len(env.ID)
	for _, n := range notes {
		size += 48 + len(n.Channel) + n.MessageSize()
	}
	buf := slices.Grow(ctx.Response.SwapBody(nil)[:0], size)
	buf = append(buf, `{"jsonrpc":"2.0","id":`...)
	buf = appendID(buf, env.ID)
	buf = append(buf, `,"result":[`...)
	for i, n := range notes {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"id":`...)
		buf = strconv.AppendUint(buf, n.ID, 10)
		buf = append(buf, `,"channel":`...)
		buf = appendJSONString(buf, n.Channel)
		buf = append(buf, `,"message":`...)
		buf = n.AppendMessage(buf)
		buf = append(buf, '}')
	}
	buf = append(buf, "]}"...)
	ctx.SetContentType("application/json")
	ctx.Response.SwapBody(buf)
}

func (s *Server) writeResult(ctx *fasthttp.RequestCtx, id, result []byte) {
	ctx.SetContentType("application/json")
	out := make([]byte, 0, len(result)+48)
	out = append(out, `{"jsonrpc":"2.0","id":`...)
	out = appendID(out, id)
	out = append(out, `,"result":`...)
	out = append(out, result...)
	out = append(out, '}')
	ctx.SetBody(out)
}

func (s *Server) writeError(ctx *fasthttp.RequestCtx, id []byte, err error) {
	code := appliance.ErrorCode(err)
	msg := appliance.ErrorMessage(err)
	s.noteError(ctx, code, msg)
	switch code {
	case appliance.EINVALID, appliance.ENOTFOUND:
		// Answered and counted every time; logged once a minute per
		// address and kind, so a looping client cannot fill the journal.
		rule := ruleInvalid
		if code == appliance.ENOTFOUND {
			rule = ruleNoRoute
		}
		if host := remoteHost(ctx.RemoteAddr()); s.limits.allow(rule, host) {
			s.log.Warn("rejected request", "rule", rule, "path", string(ctx.Path()), "remote", host, "err", msg)
		}
	case appliance.EFORBIDDEN, appliance.ELIMIT:
		rule := ruleDatabase
		if code == appliance.ELIMIT {
			rule = ruleLimit
		}
		if host := remoteHost(ctx.RemoteAddr()); s.limits.allow(rule, host) {
			s.log.Warn("refused request", "rule", rule, "value", appliance.ErrorValue(err), "remote", host,
				"method", string(ctx.Method()), "path", string(ctx.Path()), "err", msg)
		}
	default:
		s.log.Error("request failed", "path", string(ctx.Path()), "remote", ctx.RemoteAddr().String(), "err", err)
	}
	_, status := errorName(code)
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(appendRPCError(nil, id, code, msg))
}

// exactReadMax is the largest declared body length readBody allocates
// up front (an order update is 2–10 KiB).
const exactReadMax = 256 << 10

// drainCap bounds how much of an oversized body is read and discarded so
// the connection can close cleanly (a close with unread data makes the
// kernel reset it, and the client would never see the 413).
const drainCap = 64 << 20

// readBody reads the request body up to the limit. The server streams
// request bodies, so an oversized one is answered here: 413 with a
// JSON-RPC error naming the limit, after draining the rest (bounded by
// drainCap and the read timeout) and closing the connection.
func (s *Server) readBody(ctx *fasthttp.RequestCtx) ([]byte, bool) {
	limit := s.opts.MaxBodyBytes
	stream := ctx.RequestBodyStream()
	if stream == nil {
		return ctx.Request.Body(), true
	}
	if cl := ctx.Request.Header.ContentLength(); cl > limit {
		s.tooLarge(ctx, stream)
		return nil, false
	}
	var body []byte
	var err error
	if cl := ctx.Request.Header.ContentLength(); cl >= 0 && cl <= exactReadMax {
		// The usual case: read exactly the declared length into one
		// buffer of that size (io.ReadAll would grow and copy from 512
		// bytes, and keep the slack for as long as a poll waits). A
		// larger declared length goes through io.ReadAll, so memory
		// follows the bytes that arrive, not what a client claims.
		body = make([]byte, cl)
		_, err = io.ReadFull(stream, body)
	} else {
		body, err = io.ReadAll(io.LimitReader(stream, int64(limit)+1))
	}
	if err != nil {
		s.writeError(ctx, nil, appliance.Errorf(appliance.EINVALID, "request body could not be read: %v", err))
		ctx.SetConnectionClose()
		return nil, false
	}
	if len(body) > limit {
		s.tooLarge(ctx, stream)
		return nil, false
	}
	return body, true
}

func (s *Server) tooLarge(ctx *fasthttp.RequestCtx, rest io.Reader) {
	msg := fmt.Sprintf("request body is larger than the limit of %d bytes (http.max_body_bytes)", s.opts.MaxBodyBytes)
	if host := remoteHost(ctx.RemoteAddr()); s.limits.allow(ruleTooLarge, host) {
		s.log.Warn("rejected request", "rule", ruleTooLarge, "path", string(ctx.Path()), "remote", host,
			"content_length", ctx.Request.Header.ContentLength(), "err", msg)
	}
	s.refused(ctx, ruleTooLarge, msg)
	_, _ = io.CopyN(io.Discard, rest, drainCap)
	ctx.SetStatusCode(fasthttp.StatusRequestEntityTooLarge)
	ctx.SetContentType("application/json")
	ctx.SetBody(appendRPCError(nil, nil, appliance.EINVALID, msg))
	ctx.SetConnectionClose()
}

// invalidUTF8 returns the offset of the first byte of b that is not valid
// UTF-8, or -1.
func invalidUTF8(b []byte) int {
	if utf8.Valid(b) {
		return -1
	}
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return -1
}
