package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strconv"
	"sync"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/valyala/fasthttp"
)

// possyncTarget drives a possync server the way Odoo 12 POS clients do
// (protocol.md §3.1, §4.2, §4.3, §6.1).
type possyncTarget struct {
	base  string // http://host:port
	addr  string // host:port
	db    string
	pids  []int
	terms []*psTerm
	wg    sync.WaitGroup
}

// psTerm is one simulated Odoo 12 POS terminal of a possync target.
type psTerm struct {
	info      *termInfo
	ms        int // multi_session_id
	hc        *fasthttp.HostClient
	chLP      string // channel names, as JSON text
	chMS      string
	messageID int64 // pos.multi_session_message_ID as the client tracks it (§6.1)
	last      int64 // highest bus id seen
}

func newPossyncTarget(base, db string, pids []int) (*possyncTarget, error) {
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("server URL %q: want http://host:port", base)
	}
	return &possyncTarget{base: base, addr: u.Host, db: db, pids: pids}, nil
}

func (p *possyncTarget) name() string { return "possync" }

func (p *possyncTarget) perUpdate() string {
	return "validates the update (revision check, numbering), commits it durably (Badger, SyncWrites) before " +
		"answering, renders one copy per terminal with its own message_ID and wakes each terminal's long-poll"
}

func (p *possyncTarget) procs() []int { return p.pids }

func (p *possyncTarget) newTerm(t *termInfo, conns int) *psTerm {
	ch := func(kind string) string {
		b, _ := json.Marshal([]string{p.db, kind, strconv.Itoa(t.pos)})
		return string(b)
	}
	return &psTerm{
		info: t,
		ms:   t.ms + 1,
		hc: &fasthttp.HostClient{Addr: p.addr, MaxConns: conns, MaxConnWaitTimeout: 30 * time.Second,
			ReadTimeout: 70 * time.Second, WriteTimeout: 10 * time.Second, MaxIdleConnDuration: 10 * time.Minute},
		chLP: ch("pos.longpolling"),
		chMS: ch("pos.multi_session"),
	}
}

// open runs every terminal's start-up sync_all (immediate_rerendering, as
// at POS load), then starts its poller, and returns when the server
// reports all polls waiting.
func (p *possyncTarget) open(ctx context.Context, l layout, rec *recorder) error {
	base, err := p.waitingPolls()
	if err != nil {
		return err
	}
	p.terms = make([]*psTerm, len(l.terms))
	for i := range l.terms {
		p.terms[i] = p.newTerm(&l.terms[i], 2)
	}
	if err := parallel(ctx, len(p.terms), 32, func(i int) error { return p.terms[i].syncAll(p.db) }); err != nil {
		return err
	}
	for _, t := range p.terms {
		p.wg.Go(func() { t.pollLoop(ctx, rec) })
	}
	return p.waitPolls(ctx, base+len(p.terms))
}

// waitPolls waits until the server has n polls waiting.
func (p *possyncTarget) waitPolls(ctx context.Context, n int) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		got, err := p.waitingPolls()
		if err != nil {
			return err
		}
		if got >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d polls waiting after 60s (every terminal polls from this machine: a server started by hand needs security.max_polls_per_client = 0 beyond 32 terminals, and security.max_conns above twice the terminals; its log says which limit answered early)", got, n)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitingPolls reads waiting_polls from the server's /healthz.
func (p *possyncTarget) waitingPolls() (int, error) {
	code, body, err := fasthttp.GetTimeout(nil, p.base+"/healthz", 10*time.Second)
	if err != nil {
		return 0, fmt.Errorf("GET /healthz: %w", err)
	}
	var h struct {
		Waiting *int `json:"waiting_polls"`
	}
	if err := json.Unmarshal(body, &h); err != nil || h.Waiting == nil {
		return 0, fmt.Errorf("GET /healthz: %d %.200s", code, body)
	}
	return *h.Waiting, nil
}

func (p *possyncTarget) close() {
	for _, t := range p.terms {
		t.hc.CloseIdleConnections()
	}
	// Pollers parked in the server end when it answers (poll hold) or
	// stops; they check ctx after every answer and are not waited for.
}

func (p *possyncTarget) send(t *termInfo, o *benchOrder, msg []byte) (ackInfo, error) {
	pt := p.terms[t.idx]
	var res struct {
		Action  string `json:"action"`
		Rev     int64  `json:"revision_ID"`
		OrderID int64  `json:"order_ID"`
		UID     string `json:"uid"`
	}
	if err := pt.call(p.db, msg, &res); err != nil {
		return ackInfo{}, err
	}
	if res.Action != "update_revision_ID" || res.UID != o.uid {
		return ackInfo{}, fmt.Errorf("update_order %s rev %d: answer %+v, want update_revision_ID", o.uid, o.rev, res)
	}
	return ackInfo{rev: res.Rev, orderID: res.OrderID}, nil
}

// rpcAnswer is a JSON-RPC answer with its result decoded into Result.
type rpcAnswer struct {
	Result any             `json:"result"`
	Error  json.RawMessage `json:"error"`
}

// call posts message to /pos_multi_session_sync/update (§3.2) and decodes
// the result into out.
func (t *psTerm) call(db string, message []byte, out any) error {
	body := make([]byte, 0, len(message)+160)
	body = append(body, `{"jsonrpc":"2.0","method":"call","params":{"multi_session_id":`...)
	body = strconv.AppendInt(body, int64(t.ms), 10)
	body = append(body, `,"message":`...)
	body = append(body, message...)
	body = append(body, `,"dbname":`...)
	body = strconv.AppendQuote(body, db)
	body = append(body, `,"user_ID":`...)
	body = strconv.AppendInt(body, int64(t.info.user), 10)
	body = append(body, `},"id":`...)
	body = strconv.AppendInt(body, 1+rand.Int64N(999_999_999), 10)
	body = append(body, '}')
	return t.post("/pos_multi_session_sync/update", body, out)
}

func (t *psTerm) post(path string, body []byte, out any) error {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + t.hc.Addr + path)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/json")
	req.Header.Set("Origin", "http://odoo.bench")
	req.SetBodyRaw(body)
	if err := t.hc.Do(req, resp); err != nil {
		return fmt.Errorf("POST %s: %w", path, err)
	}
	if resp.StatusCode() != fasthttp.StatusOK {
		return fmt.Errorf("POST %s: HTTP %d: %.200s", path, resp.StatusCode(), resp.Body())
	}
	ans := rpcAnswer{Result: out}
	if err := json.Unmarshal(resp.Body(), &ans); err != nil {
		return fmt.Errorf("POST %s: answer: %w: %.200s", path, err, resp.Body())
	}
	if len(ans.Error) > 0 && string(ans.Error) != "null" {
		return fmt.Errorf("POST %s: JSON-RPC error %.300s", path, ans.Error)
	}
	return nil
}

// syncAll sends the start-up sync_all with immediate_rerendering and
// adopts its message_ID (§4.3, ms.js).
func (t *psTerm) syncAll(db string) error {
	msg := fmt.Appendf(nil, `{"action":"sync_all","session_id":%d,"login_number":%d,"immediate_rerendering":true,"data":{"run_ID":1,"pos_id":%d,"nonce":"s%04d"}}`,
		t.info.session, t.info.login, t.info.pos, t.info.idx%10000)
	var res struct {
		Action string `json:"action"`
		Data   struct {
			MessageID *int64 `json:"message_ID"`
		} `json:"data"`
	}
	if err := t.call(db, msg, &res); err != nil {
		return fmt.Errorf("POS %d sync_all: %w", t.info.pos, err)
	}
	if res.Action != "sync_all" || res.Data.MessageID == nil {
		return fmt.Errorf("POS %d sync_all: answer %+v has no data.message_ID", t.info.pos, res)
	}
	t.messageID = *res.Data.MessageID
	return nil
}

// busMessage is the part of a bus notification's message the client's
// filter reads (§6.1). The bench sends no PING, so no bare-string message
// ("PONG") is expected; one would fail the poll's decoding and count as an
// error.
type busMessage struct {
	Action      string `json:"action"`
	SessionID   int64  `json:"session_id"`
	LoginNumber int64  `json:"login_number"`
	Data        struct {
		Nonce     string `json:"nonce"`
		MessageID int64  `json:"message_ID"`
	} `json:"data"`
}

type pollAnswer struct {
	Result []struct {
		ID      int64      `json:"id"`
		Channel string     `json:"channel"`
		Message busMessage `json:"message"`
	} `json:"result"`
	Error json.RawMessage `json:"error"`
}

// pollLoop long-polls /longpolling/poll on the terminal's two channels
// like the Odoo 12 bus (§3.1): last = the highest id seen, re-poll at once
// after every answer, retry after a failure. Each pos.multi_session
// message goes through the ms.js message_ID filter (§6.1).
func (t *psTerm) pollLoop(ctx context.Context, rec *recorder) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	var body []byte
	for ctx.Err() == nil {
		body = append(body[:0], `{"jsonrpc":"2.0","method":"call","params":{"channels":[`...)
		body = strconv.AppendQuote(body, t.chLP)
		body = append(body, ',')
		body = strconv.AppendQuote(body, t.chMS)
		body = append(body, `],"last":`...)
		body = strconv.AppendInt(body, t.last, 10)
		body = append(body, `,"options":{"bus_inactivity":`...)
		body = strconv.AppendInt(body, 1000+rand.Int64N(9000), 10)
		body = append(body, `}},"id":`...)
		body = strconv.AppendInt(body, 1+rand.Int64N(999_999_999), 10)
		body = append(body, '}')
		req.Reset()
		req.SetRequestURI("http://" + t.hc.Addr + "/longpolling/poll")
		req.Header.SetMethod(fasthttp.MethodPost)
		req.Header.SetContentType("application/json")
		req.Header.Set("Origin", "http://odoo.bench")
		req.SetBodyRaw(body)
		err := t.hc.Do(req, resp)
		at := time.Now()
		if ctx.Err() != nil {
			return
		}
		var ans pollAnswer
		if err == nil && resp.StatusCode() != fasthttp.StatusOK {
			err = fmt.Errorf("HTTP %d: %.200s", resp.StatusCode(), resp.Body())
		}
		if err == nil {
			if err = jsonv2.Unmarshal(resp.Body(), &ans); err == nil && len(ans.Error) > 0 && string(ans.Error) != "null" {
				err = fmt.Errorf("JSON-RPC error %.300s", ans.Error)
			}
		}
		if err != nil {
			rec.fail(fmt.Errorf("POS %d poll: %w", t.info.pos, err))
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		for _, n := range ans.Result {
			if n.ID <= t.last {
				rec.fail(fmt.Errorf("POS %d: poll with last=%d returned old id %d", t.info.pos, t.last, n.ID))
				continue
			}
			t.last = n.ID
			m := &n.Message
			if n.Channel != t.chMS {
				continue
			}
			t.track(m, rec)
			rec.deliver(t.info.idx, m.Data.Nonce, at)
		}
	}
}

// track applies the ms.js incoming filter (§6.1) and counts a gap when a
// message's message_ID does not follow the terminal's counter. The client
// would then request a full sync_all; the bench counts it and adopts the
// message_ID instead, so one lost message counts once.
func (t *psTerm) track(m *busMessage, rec *recorder) {
	mid := m.Data.MessageID
	sameSession := m.SessionID == int64(t.info.session)
	sameLogin := m.LoginNumber == int64(t.info.login)
	switch {
	case sameSession && sameLogin && m.Action != "sync_all": // own echo
	case sameSession && !sameLogin && m.Action == "sync_all":
	case m.Action == "sync_all":
	case mid == t.messageID+1:
	default:
		rec.gap()
	}
	t.messageID = mid
}

// parallel runs f(0..n-1) with at most width at once and returns the
// first error.
func parallel(ctx context.Context, n, width int, f func(i int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	sem := make(chan struct{}, width)
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return ctx.Err()
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := f(i); err != nil {
				mu.Lock()
				first = errors.Join(first, err)
				mu.Unlock()
			}
		})
		mu.Lock()
		failed := first != nil
		mu.Unlock()
		if failed {
			break
		}
	}
	wg.Wait()
	return first
}
