package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHelperProcess is not a test: it runs possync's main logic when the
// test binary is re-executed by startChild, so the tests can kill -9 a
// real process.
func TestHelperProcess(t *testing.T) {
	if os.Getenv("POSSYNC_HELPER_PROCESS") != "1" {
		return
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	main2(args)
}

// main2 is main with explicit args.
func main2(args []string) {
	os.Args = append([]string{"possync"}, args...)
	main()
}

type child struct {
	cmd  *exec.Cmd
	url  string
	logs *syncBuffer
	done chan error
}

var listenRE = regexp.MustCompile(`msg="possync serving" listen=(\S+)`)

// startChild runs `possync serve` in a child process on a free port.
func startChild(t testing.TB, dir string) *child {
	t.Helper()
	return startChildWith(t, childOptions{dir: dir})
}

// childOptions configures startChildWith.
type childOptions struct {
	dir    string   // data directory
	prefix []string // command the child runs under, e.g. prlimit --nofile=40:40
	config string   // TOML written to a file passed as -config; "" = none
	env    []string // added to the environment
}

// startChildWith runs `possync serve` in a child process on a free port.
func startChildWith(t testing.TB, o childOptions) *child {
	t.Helper()
	args := []string{"-test.run=^TestHelperProcess$", "--", "serve", "-listen", "127.0.0.1:0", "-data", o.dir, "-mdns=false", "-tls-listen", "127.0.0.1:0"}
	if o.config != "" {
		path := filepath.Join(t.TempDir(), "possync.toml")
		if err := os.WriteFile(path, []byte(o.config), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-config", path)
	}
	argv := append(append(append([]string{}, o.prefix...), os.Args[0]), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(append(os.Environ(), "POSSYNC_HELPER_PROCESS=1", "LOG_LEVEL=info"), o.env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, logs: &syncBuffer{}, done: make(chan error, 1)}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			c.logs.Write([]byte(line + "\n"))
			if m := listenRE.FindStringSubmatch(line); m != nil {
				addr <- m[1]
			}
		}
		c.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-c.done
		}
	})
	select {
	case a := <-addr:
		c.url = "http://" + a
	case err := <-c.done:
		t.Fatalf("possync serve exited before serving: %v\n%s", err, c.logs)
	case <-time.After(30 * time.Second):
		t.Fatalf("possync serve did not start within 30s\n%s", c.logs)
	}
	return c
}

func (c *child) kill9(t testing.TB) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-c.done
}

func rpc(t *testing.T, url, path string, params any) (map[string]any, error) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "method": "call", "id": 1, "params": params})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", url+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("answer %q: %w", b, err)
	}
	if out["error"] != nil {
		return nil, fmt.Errorf("rpc error: %v", out["error"])
	}
	return out, nil
}

func update(t *testing.T, url string, msg map[string]any) (map[string]any, error) {
	out, err := rpc(t, url, "/pos_multi_session_sync/update", map[string]any{"multi_session_id": 1, "dbname": "shop", "user_ID": 2, "message": msg})
	if err != nil {
		return nil, err
	}
	res, _ := out["result"].(map[string]any)
	return res, nil
}

func mustUpdate(t *testing.T, url string, msg map[string]any) map[string]any {
	t.Helper()
	res, err := update(t, url, msg)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func syncAll(pos int) map[string]any {
	return map[string]any{"action": "sync_all", "session_id": pos, "login_number": 1, "immediate_rerendering": true,
		"data": map[string]any{"run_ID": 1, "pos_id": pos, "nonce": "s"}}
}

func order(uid string, seq, rev int, nonce string) map[string]any {
	return map[string]any{"action": "update_order", "session_id": 1, "login_number": 1,
		"data": map[string]any{"uid": uid, "sequence_number": seq, "revision_ID": rev, "run_ID": 1, "pos_id": 1, "nonce": nonce,
			"lines": []any{[]any{0, 0, map[string]any{"uid": uid + "-1", "qty": rev}}}}}
}

func n(v any) int { f, _ := v.(float64); return int(f) }

// ordersByUID returns uid → revision from a full sync_all.
func ordersByUID(t *testing.T, url string, pos int) (map[string]int, map[string]any) {
	t.Helper()
	res := mustUpdate(t, url, syncAll(pos))
	data := res["data"].(map[string]any)
	out := map[string]int{}
	for _, o := range data["orders"].([]any) {
		d := o.(map[string]any)["data"].(map[string]any)
		out[d["uid"].(string)] = n(d["revision_ID"])
	}
	return out, data
}

func newestBusID(t *testing.T, url string) int {
	t.Helper()
	out, err := rpc(t, url, "/pos_longpolling/update", map[string]any{"message": "PING", "pos_id": 99, "db_name": "shop"})
	if err != nil {
		t.Fatal(err)
	}
	_ = out
	poll, err := rpc(t, url, "/longpolling/poll", map[string]any{"channels": []string{`["shop","pos.longpolling","99"]`}, "last": 0})
	if err != nil {
		t.Fatal(err)
	}
	max := 0
	for _, it := range poll["result"].([]any) {
		if id := n(it.(map[string]any)["id"]); id > max {
			max = id
		}
	}
	return max
}

func TestSigtermStopsCleanly(t *testing.T) {
	dir := t.TempDir()
	c := startChild(t, dir)
	mustUpdate(t, c.url, syncAll(1))
	mustUpdate(t, c.url, order("x", 1, 1, "n"))
	// A waiting poll must not delay the shutdown.
	go rpc(t, c.url, "/longpolling/poll", map[string]any{"channels": []string{`["shop","pos.multi_session","1"]`}, "last": 1 << 40})
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-c.done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, c.logs)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("possync did not stop within 10s of SIGTERM")
	}
	t.Logf("stopped in %v", time.Since(start))
	c2 := startChild(t, dir)
	got, _ := ordersByUID(t, c2.url, 1)
	if got["x"] != 1 {
		t.Errorf("after restart orders = %v, want x at revision 1", got)
	}
}

func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, &out, &errb)
	f, _ := os.CreateTemp(t.TempDir(), "stderr")
	code = exitCode(err, f)
	f.Seek(0, 0)
	b, _ := io.ReadAll(f)
	return out.String(), errb.String() + string(b), code
}

func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	os.WriteFile(good, []byte("[http]\nlisten = \":9000\"\n"), 0o600)
	if out, errs, code := runCLI(t, "check-config", "-config", good); code != 0 || !strings.Contains(out, "OK") {
		t.Errorf("check-config good = %d %q %q", code, out, errs)
	}
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("[http]\nlisten = \"nope\"\npoll_hold = \"2h\"\ntypo = 1\n"), 0o600)
	_, errs, code := runCLI(t, "check-config", "-config", bad)
	if code != 1 {
		t.Errorf("check-config bad exit = %d, want 1", code)
	}
	for _, want := range []string{"http.listen", "http.poll_hold", "http.typo", "unknown key"} {
		if !strings.Contains(errs, want) {
			t.Errorf("check-config bad output %q lacks %q", errs, want)
		}
	}
	if example := "../../testdata/possync.example.toml"; true {
		if _, errs, code := runCLI(t, "check-config", "-config", example); code != 0 {
			t.Errorf("check-config example = %d %s", code, errs)
		}
	}
	if _, _, code := runCLI(t, "check-config"); code != 2 {
		t.Errorf("check-config without -config exit = %d, want 2", code)
	}
}

func TestVersionAndUsage(t *testing.T) {
	out, _, code := runCLI(t, "version")
	if code != 0 || !strings.Contains(out, "possync") || !strings.Contains(out, runtime.GOOS+"/"+runtime.GOARCH) || !strings.Contains(out, runtime.Version()) {
		t.Errorf("version = %d %q", code, out)
	}
	if _, errs, code := runCLI(t, "frobnicate"); code != 2 || !strings.Contains(errs, "unknown command") {
		t.Errorf("unknown command = %d %q", code, errs)
	}
	if _, errs, code := runCLI(t, "serve", "-config", filepath.Join(t.TempDir(), "missing.toml")); code != 1 || !strings.Contains(errs, "missing.toml") {
		t.Errorf("serve with missing config = %d %q", code, errs)
	}
}

func TestSimulateAgainstRealServer(t *testing.T) {
	c := startChild(t, t.TempDir())
	for round := 1; round <= 2; round++ { // a second run must pass too (old notifications replayed)
		out, errs, code := runCLI(t, "simulate", "-url", c.url+"/", "-terminals", "3")
		if code != 0 || !strings.Contains(out, "OK: every terminal received every change") {
			t.Fatalf("simulate round %d = exit %d\n%s\n%s", round, code, out, errs)
		}
		if !strings.Contains(out, "revision_error") || strings.Count(out, "← update_order") < 6 {
			t.Errorf("simulate round %d output lacks the conflict or the broadcasts:\n%s", round, out)
		}
	}
	if _, errs, code := runCLI(t, "simulate", "-terminals", "1"); code != 2 || !strings.Contains(errs, "-terminals") {
		t.Errorf("simulate -terminals 1 = %d %q, want usage error", code, errs)
	}
}
