package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"
)

// runSimulate plays several Odoo 12 POS terminals against a Sync Server,
// the way the pos_multi_session client does, and prints what each terminal
// receives: a smoke test anyone can run against a box.
func runSimulate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "http://127.0.0.1:8079", "Sync Server URL (as in the POS \"Sync Server\" field)")
	terminals := fs.Int("terminals", 2, "number of simulated POS terminals (2 to 20)")
	db := fs.String("db", "possync-demo", "Odoo database name to use")
	ms := fs.Int("multi-session", 1, "multi-session id")
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2}
	}
	if *terminals < 2 || *terminals > 20 {
		return &exitError{code: 2, err: fmt.Errorf("simulate: -terminals must be from 2 to 20, got %d", *terminals)}
	}
	sim := &simulation{url: strings.TrimRight(*url, "/"), db: *db, ms: *ms, out: stdout, client: &http.Client{Timeout: 70 * time.Second}}
	return sim.run(ctx, *terminals)
}

type simulation struct {
	url    string
	db     string
	ms     int
	out    io.Writer
	client *http.Client
	mu     sync.Mutex // guards out
}

type simTerminal struct {
	pos, session int
	run          int
	sim          *simulation
	mu           sync.Mutex
	messageID    int
	gaps         int
	received     int
	got          chan map[string]any
}

func (s *simulation) printf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.out, format, args...)
}

func (s *simulation) call(ctx context.Context, path string, params any) (json.RawMessage, error) {
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "method": "call", "params": params, "id": rand.IntN(1e9)})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer resp.Body.Close()
	var out struct {
		Result json.RawMessage
		Error  *struct {
			Data struct{ Message string }
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("%s: HTTP %d, answer is not JSON-RPC: %w", path, resp.StatusCode, err)
	}
	if out.Error != nil {
		return nil, fmt.Errorf("%s: server error: %s", path, out.Error.Data.Message)
	}
	return out.Result, nil
}

func (t *simTerminal) update(ctx context.Context, msg map[string]any) (map[string]any, error) {
	msg["session_id"], msg["login_number"] = t.session, 1
	data := msg["data"].(map[string]any)
	data["pos_id"], data["run_ID"], data["nonce"] = t.pos, t.run, fmt.Sprintf("%x", rand.Uint32())
	raw, err := t.sim.call(ctx, "/pos_multi_session_sync/update", map[string]any{"multi_session_id": t.sim.ms, "dbname": t.sim.db, "user_ID": 2, "message": msg})
	if err != nil {
		return nil, err
	}
	var res map[string]any
	return res, json.Unmarshal(raw, &res)
}

// poll long-polls the terminal's channels and applies the client's
// message_ID rules (protocol.md §6.1) until ctx is done.
func (t *simTerminal) poll(ctx context.Context, wg *sync.WaitGroup) {
	defer wg.Done()
	chs := []string{fmt.Sprintf(`[%q,"pos.longpolling","%d"]`, t.sim.db, t.pos), fmt.Sprintf(`[%q,"pos.multi_session","%d"]`, t.sim.db, t.pos)}
	last := uint64(1) << 62 // beyond any id: the server replays recent notifications
	for ctx.Err() == nil {
		raw, err := t.sim.call(ctx, "/longpolling/poll", map[string]any{"channels": chs, "last": last, "options": map[string]any{"bus_inactivity": 0}})
		if err != nil {
			if ctx.Err() == nil {
				t.sim.printf("POS %d: poll failed: %v\n", t.pos, err)
				time.Sleep(time.Second)
			}
			continue
		}
		var notes []struct {
			ID      uint64
			Message map[string]any
		}
		_ = json.Unmarshal(raw, &notes)
		for _, n := range notes {
			last = max(last&^(1<<62), n.ID)
			t.receive(n.Message)
		}
	}
}

func (t *simTerminal) receive(m map[string]any) {
	data, _ := m["data"].(map[string]any)
	if data == nil {
		return // PONG
	}
	id := int(data["message_ID"].(float64))
	t.mu.Lock()
	if id <= t.messageID {
		// Replayed from before this terminal opened (a poll with last=0
		// gets the last 50 s): the real client resyncs; here it is skipped.
		t.mu.Unlock()
		return
	}
	own := m["session_id"] == float64(t.session)
	expected := t.messageID + 1
	t.messageID = id
	t.received++
	if !own && m["action"] != "sync_all" && id != expected {
		t.gaps++
	}
	t.mu.Unlock()
	if own {
		return
	}
	number := "-"
	if v, ok := data["sequence_number"]; ok {
		number = fmt.Sprint(v)
	}
	t.sim.printf("  POS %d ← %-12s uid=%v number=%s revision=%v message_ID=%d\n", t.pos, m["action"], data["uid"], number, data["revision_ID"], id)
	select {
	case t.got <- m:
	default:
	}
}

func (s *simulation) run(ctx context.Context, n int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	run := 1
	terms := make([]*simTerminal, n)
	s.printf("Simulating %d POS terminals against %s (database %q, multi-session %d)\n", n, s.url, s.db, s.ms)
	for i := range terms {
		t := &simTerminal{pos: i + 1, session: 10000 + rand.IntN(80000), run: run, sim: s, got: make(chan map[string]any, 64)}
		res, err := t.update(ctx, map[string]any{"action": "sync_all", "immediate_rerendering": true, "data": map[string]any{}})
		if err != nil {
			return &exitError{code: 1, err: fmt.Errorf("POS %d could not open (is possync running at %s?): %w", t.pos, s.url, err)}
		}
		d := res["data"].(map[string]any)
		t.messageID = int(d["message_ID"].(float64))
		s.printf("POS %d opened: %d open orders, message_ID %d\n", t.pos, len(d["orders"].([]any)), t.messageID)
		terms[i] = t
	}
	var wg sync.WaitGroup
	for _, t := range terms {
		wg.Add(1)
		go t.poll(ctx, &wg)
	}
	time.Sleep(300 * time.Millisecond) // let the polls reach the server
	var problems []string
	check := func(ok bool, format string, args ...any) {
		if !ok {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}

	// Every terminal opens an order; each proposes number 1, the server
	// hands out shared numbers.
	uids := make([]string, n)
	for i, t := range terms {
		uids[i] = fmt.Sprintf("%05d-001-0001", t.session)
		res, err := t.update(ctx, simOrder(uids[i], 1, 1, 1+i))
		if err != nil {
			return &exitError{code: 1, err: err}
		}
		s.printf("POS %d → new order %s: number %v, revision %v\n", t.pos, uids[i], res["order_ID"], res["revision_ID"])
		check(res["action"] == "update_revision_ID", "POS %d new order answered %v", t.pos, res)
	}
	// Terminal 2 changes terminal 1's order, then terminal 1 sends a stale
	// revision: the server refuses it.
	res, err := terms[1].update(ctx, simOrder(uids[0], 1, 1, 5))
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	s.printf("POS 2 → changes order %s: revision %v\n", uids[0], res["revision_ID"])
	res, err = terms[0].update(ctx, simOrder(uids[0], 1, 1, 7))
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	s.printf("POS 1 → stale change of %s: %v (state %v) — the POS would resync\n", uids[0], res["action"], res["state"])
	check(res["action"] == "revision_error", "stale update answered %v, want revision_error", res)
	// Terminal 1 removes (pays) its order.
	res, err = terms[0].update(ctx, map[string]any{"action": "remove_order", "data": map[string]any{"uid": uids[0], "revision_ID": 2, "finalized": true}})
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	s.printf("POS 1 → pays order %s: last number %v\n", uids[0], res["order_ID"])

	// Every other terminal must see n new orders + 1 change + 1 removal.
	want := n + 2
	deadline := time.After(10 * time.Second)
	for _, t := range terms {
		for seen := 0; seen < want-countOwn(t); {
			select {
			case <-t.got:
				seen++
			case <-deadline:
				problems = append(problems, fmt.Sprintf("POS %d received %d of the expected broadcasts within 10s", t.pos, seen))
				seen = want
			}
		}
	}
	cancel()
	wg.Wait()
	for _, t := range terms {
		check(t.gaps == 0, "POS %d saw %d message_ID gaps", t.pos, t.gaps)
	}
	if len(problems) > 0 {
		return &exitError{code: 1, err: errors.New("simulation found problems:\n  " + strings.Join(problems, "\n  "))}
	}
	s.printf("OK: every terminal received every change in order, with shared numbering and conflict detection.\n")
	return nil
}

// countOwn is how many of the broadcasts a terminal sent itself (its own
// echoes are not shown): its new order, plus for POS 1 the removal and for
// POS 2 the change.
func countOwn(t *simTerminal) int {
	switch t.pos {
	case 1, 2:
		return 2
	default:
		return 1
	}
}

func simOrder(uid string, seq, rev, qty int) map[string]any {
	return map[string]any{"action": "update_order", "data": map[string]any{
		"uid": uid, "name": "Order " + uid, "sequence_number": seq, "revision_ID": rev, "new_order": false,
		"amount_total": 4.8 * float64(qty), "amount_tax": 0, "amount_paid": 0, "amount_return": 0,
		"lines":         []any{[]any{0, 0, map[string]any{"uid": uid + "-1", "product_id": 50, "qty": qty, "price_unit": 4.8, "discount": 0, "tax_ids": []any{[]any{6, false, []any{}}}}}},
		"statement_ids": []any{}, "partner_id": false, "pricelist_id": 1, "fiscal_position_id": false,
	}}
}
