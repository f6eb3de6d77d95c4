package apptest_test

// Tests of the simulated terminal itself, against a scripted fake bus, so
// that e2e failures can be trusted to be server failures.

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"possync/appliance/apptest"
)

// fakeBus answers the first poll with script and holds later polls until the
// client goes away.
func fakeBus(t *testing.T, script []map[string]any) (url string, entered chan struct{}, cancelled *atomic.Int32) {
	t.Helper()
	if script == nil {
		script = []map[string]any{} // [] on the wire, not null
	}
	entered = make(chan struct{}, 16)
	cancelled = new(atomic.Int32)
	var polls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			ID int64 `json:"id"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		w.Header().Set("Access-Control-Allow-Origin", "*")
		if polls.Add(1) == 1 {
			_ = json.NewEncoder(w).Encode(map[string]any{"jsonrpc": "2.0", "id": req.ID, "result": script})
			return
		}
		entered <- struct{}{}
		<-r.Context().Done()
		cancelled.Add(1)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, entered, cancelled
}

func TestTerminalStopCancelsPoll(t *testing.T) {
	url, entered, cancelled := fakeBus(t, nil)
	term := apptest.NewTerminal(t, url, apptest.TerminalConfig{DB: "shop", MultiSessionID: 1, POSID: 1, SessionID: 101, LoginNumber: 1})
	term.StartPolling()
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("second poll never reached the server")
	}
	start := time.Now()
	term.StopPolling()
	if d := time.Since(start); d > time.Second {
		t.Errorf("StopPolling took %v with a poll in flight, want it cancelled at once", d)
	}
	deadline := time.Now().Add(5 * time.Second)
	for cancelled.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if cancelled.Load() != 1 {
		t.Errorf("server saw %d cancelled polls, want 1", cancelled.Load())
	}
}

// TestTerminalTracksMessageID checks the ms.js §6.1 filter: own echoes and
// sync_all set the counter, other messages must be counter+1, else a gap.
func TestTerminalTracksMessageID(t *testing.T) {
	type msg struct {
		session, login int64
		action         string
		messageID      int64
	}
	tests := []struct {
		name     string
		msgs     []msg
		wantGaps []apptest.Gap
		wantMID  int64
	}{
		{"consecutive", []msg{{200, 1, "sync_all", 2}, {200, 1, "update_order", 3}, {300, 1, "remove_order", 4}}, nil, 4},
		{"own echo may jump", []msg{{200, 1, "sync_all", 2}, {101, 1, "update_order", 9}, {200, 1, "update_order", 10}}, nil, 10},
		{"other device's sync_all adopted", []msg{{101, 2, "sync_all", 7}, {200, 1, "update_order", 8}}, nil, 8},
		{"gap", []msg{{200, 1, "sync_all", 2}, {200, 1, "update_order", 4}, {200, 1, "update_order", 5}},
			[]apptest.Gap{{BusID: 2, Action: "update_order", UID: "u", Want: 3, Got: 4}, {BusID: 3, Action: "update_order", UID: "u", Want: 3, Got: 5}}, 2},
		{"old message", []msg{{200, 1, "sync_all", 5}, {200, 1, "x_custom", 5}},
			[]apptest.Gap{{BusID: 2, Action: "x_custom", UID: "u", Want: 6, Got: 5}}, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var script []map[string]any
			for i, m := range tt.msgs {
				script = append(script, map[string]any{
					"id":      i + 1,
					"channel": apptest.Channel("shop", "pos.multi_session", 1),
					"message": map[string]any{"action": m.action, "session_id": m.session, "login_number": m.login,
						"data": map[string]any{"uid": "u", "message_ID": m.messageID}},
				})
			}
			url, entered, _ := fakeBus(t, script)
			term := apptest.NewTerminal(t, url, apptest.TerminalConfig{DB: "shop", MultiSessionID: 1, POSID: 1, SessionID: 101, LoginNumber: 1})
			term.StartPolling()
			for range tt.msgs {
				if _, err := term.Next(5 * time.Second); err != nil {
					t.Fatal(err)
				}
			}
			<-entered // the script was fully processed
			if diff := cmp.Diff(tt.wantGaps, term.Gaps()); diff != "" {
				t.Errorf("Gaps() mismatch (-want +got):\n%s", diff)
			}
			if got := term.MessageID(); got != tt.wantMID {
				t.Errorf("MessageID() = %d, want %d", got, tt.wantMID)
			}
			if got := term.Last(); got != int64(len(tt.msgs)) {
				t.Errorf("Last() = %d, want %d", got, len(tt.msgs))
			}
		})
	}
}
