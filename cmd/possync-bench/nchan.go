package main

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/valyala/fasthttp"
)

// maxIDList is the longest channel-id list the bench puts into one nchan
// multi-channel publish; nchan refuses lists of about 1,024 characters and
// more (HTTP 403), so a larger multi-session takes several POSTs.
const maxIDList = 1000

// nchanTarget drives nginx + nchan with the same terminals and updates:
// every terminal long-polls its own channel; an update is published to
// the channels of every terminal of its multi-session (the sender's too,
// as possync sends it its echo) with multi-channel POSTs to /mpub.
type nchanTarget struct {
	base  string
	addr  string
	pid   int
	terms []*ncTerm
	l     layout
	// groups[ms] are the /mpub id lists of multi-session ms, each at most
	// maxIDList characters.
	groups [][]string
}

type ncTerm struct {
	info *termInfo
	sub  *fasthttp.HostClient
	pub  *fasthttp.HostClient
}

func newNchanTarget(n *nginxProc) *nchanTarget {
	return &nchanTarget{base: n.base(), addr: "127.0.0.1:" + strconv.Itoa(n.port), pid: n.cmd.Process.Pid}
}

func (c *nchanTarget) name() string { return "nchan" }

func (c *nchanTarget) perUpdate() string {
	return "keeps the message in memory only (nothing durable, no protocol checks, no per-terminal numbering) and " +
		"answers each terminal's long-poll with the same bytes; published with multi-channel POSTs of at most " +
		strconv.Itoa(maxIDList) + " characters of channel ids each (sent in parallel when a multi-session needs several)"
}

func (c *nchanTarget) procs() []int { return withChildren(c.pid) }

func channelID(t *termInfo) string { return "t" + strconv.Itoa(t.pos) }

func (c *nchanTarget) newTerm(t *termInfo) *ncTerm {
	hc := func(conns int) *fasthttp.HostClient {
		return &fasthttp.HostClient{Addr: c.addr, MaxConns: conns, MaxConnWaitTimeout: 30 * time.Second,
			ReadTimeout: 10 * time.Minute, WriteTimeout: 10 * time.Second, MaxIdleConnDuration: 10 * time.Minute}
	}
	return &ncTerm{info: t, sub: hc(1), pub: hc(8)}
}

// idGroups splits ids into comma-separated lists of at most limit
// characters.
func idGroups(ids []string, limit int) []string {
	var out []string
	var cur strings.Builder
	for _, id := range ids {
		if cur.Len() > 0 && cur.Len()+1+len(id) > limit {
			out = append(out, cur.String())
			cur.Reset()
		}
		if cur.Len() > 0 {
			cur.WriteByte(',')
		}
		cur.WriteString(id)
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

// open starts every terminal's long-poll subscriber and waits until nchan
// counts them all.
func (c *nchanTarget) open(ctx context.Context, l layout, rec *recorder) error {
	c.l = l
	c.terms = make([]*ncTerm, len(l.terms))
	for i := range l.terms {
		c.terms[i] = c.newTerm(&l.terms[i])
	}
	c.groups = make([][]string, len(l.sessions))
	for ms, members := range l.sessions {
		ids := make([]string, len(members))
		for j, i := range members {
			ids[j] = channelID(&l.terms[i])
		}
		c.groups[ms] = idGroups(ids, maxIDList)
	}
	base, err := c.subscribers()
	if err != nil {
		return err
	}
	for _, t := range c.terms {
		go t.subscribe(ctx, rec)
	}
	return waitFor(ctx, 60*time.Second, func() (bool, string, error) {
		n, err := c.subscribers()
		return n >= base+len(c.terms), fmt.Sprintf("%d of %d subscribers", n-base, len(c.terms)), err
	})
}

var subscribersRE = regexp.MustCompile(`(?m)^subscribers: (\d+)`)

// subscribers reads the subscriber count from nchan_stub_status.
func (c *nchanTarget) subscribers() (int, error) {
	code, body, err := fasthttp.GetTimeout(nil, c.base+"/status", 10*time.Second)
	if err != nil {
		return 0, fmt.Errorf("GET /status: %w", err)
	}
	m := subscribersRE.FindSubmatch(body)
	if code != fasthttp.StatusOK || m == nil {
		return 0, fmt.Errorf("GET /status: %d %.200s", code, body)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n, nil
}

// waitFor polls cond every 20 ms until it holds, fails, or d passes.
func waitFor(ctx context.Context, d time.Duration, cond func() (bool, string, error)) error {
	deadline := time.Now().Add(d)
	for {
		ok, state, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %v: %s", d, state)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (c *nchanTarget) close() {
	for _, t := range c.terms {
		t.pub.CloseIdleConnections()
	}
}

// send publishes msg to every terminal of t's multi-session: one POST per
// id group, in parallel, and returns when all are answered. nchan numbers
// nothing, so the order's revision is counted up locally.
func (c *nchanTarget) send(t *termInfo, o *benchOrder, msg []byte) (ackInfo, error) {
	nt := c.terms[t.idx]
	groups := c.groups[t.ms]
	errs := make([]error, len(groups))
	var wg sync.WaitGroup
	for g := 1; g < len(groups); g++ {
		wg.Go(func() { errs[g] = nt.publish(groups[g], msg) })
	}
	errs[0] = nt.publish(groups[0], msg)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return ackInfo{}, err
		}
	}
	rev := o.rev
	if o.onServer {
		rev++
	}
	return ackInfo{rev: rev}, nil
}

func (t *ncTerm) publish(ids string, msg []byte) error {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + t.pub.Addr + "/mpub?id=" + ids)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/json")
	req.SetBodyRaw(msg)
	if err := t.pub.Do(req, resp); err != nil {
		return fmt.Errorf("nchan publish: %w", err)
	}
	if c := resp.StatusCode(); c != fasthttp.StatusCreated && c != fasthttp.StatusAccepted && c != fasthttp.StatusOK {
		return fmt.Errorf("nchan publish to %d characters of ids: HTTP %d: %.200s", len(ids), c, resp.Body())
	}
	return nil
}

// subscribe long-polls the terminal's channel: each answer is one message;
// the next request resumes after it with If-Modified-Since/If-None-Match
// from its Last-Modified/Etag, so every message arrives exactly once.
func (t *ncTerm) subscribe(ctx context.Context, rec *recorder) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	var lastMod, etag string
	uri := "http://" + t.sub.Addr + "/sub?id=" + channelID(t.info)
	for ctx.Err() == nil {
		req.Reset()
		req.SetRequestURI(uri)
		if lastMod != "" {
			req.Header.Set("If-Modified-Since", lastMod)
			req.Header.Set("If-None-Match", etag)
		}
		err := t.sub.Do(req, resp)
		at := time.Now()
		if ctx.Err() != nil {
			return
		}
		if err == nil && resp.StatusCode() != fasthttp.StatusOK {
			if resp.StatusCode() == fasthttp.StatusNotModified || resp.StatusCode() == fasthttp.StatusRequestTimeout {
				continue
			}
			err = fmt.Errorf("HTTP %d: %.200s", resp.StatusCode(), resp.Body())
		}
		var m busMessage
		if err == nil {
			err = jsonv2.Unmarshal(resp.Body(), &m)
		}
		if err != nil {
			rec.fail(fmt.Errorf("nchan subscriber %s: %w", channelID(t.info), err))
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		lastMod = string(resp.Header.Peek("Last-Modified"))
		etag = string(resp.Header.Peek("Etag"))
		rec.deliver(t.info.idx, m.Data.Nonce, at)
	}
}
