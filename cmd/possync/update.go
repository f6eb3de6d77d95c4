package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"
)

// Exit codes of `possync update` (docs/update.md "Ways in").
const (
	updExitRefusedBundle = 7 // the box refused the bundle (bad signature, too large, disk full, busy)
	updExitNetwork       = 6 // the box refused this client's address or origin (security.allowed_networks)
	updExitNoEndpoint    = 5 // the box has no admin endpoint (off, or a possync without it)
	updExitUnreachable   = 4 // no answer from the box
	updExitToken         = 3 // the box refused the token
)

const updateUsage = `usage: possync update -box http://possync.local:8079 [-token-file FILE] BUNDLE
       possync update -box https://possync.local:8443 -ca ca.crt [-token-file FILE] BUNDLE
  The token comes from -token-file or the POSSYNC_ADMIN_TOKEN environment variable; over https://
  (with the box's CA as -ca) it does not cross the LAN in clear text.
  Exit: 0 accepted, 2 usage, 3 wrong token, 4 box unreachable, 5 no admin endpoint,
        6 address refused (security.allowed_networks), 7 bundle refused, 1 other errors.`

// runUpdate uploads a bundle to a box's admin endpoint with progress on
// stderr, and prints the box's answer.
func runUpdate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("update", flag.ContinueOnError)
	fs.SetOutput(stderr)
	box := fs.String("box", "", "the box's URL, e.g. http://possync.local:8079 (required)")
	tokenFile := fs.String("token-file", "", "file holding the admin token (default: $POSSYNC_ADMIN_TOKEN)")
	caFile := fs.String("ca", "", "with an https:// box: PEM file of the box's CA to trust (possync cert -out on the box, or http://<box>:8079/ca.crt)")
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2}
	}
	if *box == "" || fs.NArg() != 1 {
		fmt.Fprintln(stderr, updateUsage)
		return &exitError{code: 2}
	}
	token, from := os.Getenv("POSSYNC_ADMIN_TOKEN"), "POSSYNC_ADMIN_TOKEN"
	if *tokenFile != "" {
		from = *tokenFile
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			return &exitError{code: 2, err: fmt.Errorf("update: token file: %w", err)}
		}
		token = string(b)
	}
	token = strings.TrimSpace(strings.TrimPrefix(token, "\ufeff")) // a file saved by Notepad: byte order mark, CRLF
	if token == "" {
		return &exitError{code: 2, err: errors.New("update: no admin token: pass -token-file FILE or set POSSYNC_ADMIN_TOKEN")}
	}
	if i := strings.IndexFunc(token, func(r rune) bool { return r < ' ' || r == 0x7f }); i >= 0 {
		return &exitError{code: 2, err: fmt.Errorf("update: the admin token in %s has a line break or control character at byte %d: it must be one line (the box's token file as is)", from, i)}
	}
	tlsConf, err := updateTLS(*box, *caFile, stderr)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	bundle := fs.Arg(0)
	f, err := os.Open(bundle)
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("update: %w", err)}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return &exitError{code: 2, err: fmt.Errorf("update: %s is not a regular file", bundle)}
	}
	endpoint := strings.TrimRight(*box, "/") + "/possync/admin/update"
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, TLSClientConfig: tlsConf,
		DialContext: (&net.Dialer{Timeout: 10 * time.Second}).DialContext, ResponseHeaderTimeout: 10 * time.Minute}}

	// Check the token, the endpoint, the size and the box's free space
	// first: a refusal costs no upload.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s?size=%d", endpoint, fi.Size()), nil)
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("update: %w", err)}
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if _, err := adminCall(client, req, *box); err != nil {
		return err
	}

	prog := &progress{total: fi.Size(), name: filepath.Base(bundle), w: stderr, start: time.Now()}
	req, err = http.NewRequestWithContext(ctx, http.MethodPost, endpoint, io.TeeReader(f, prog))
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("update: %w", err)}
	}
	req.ContentLength = fi.Size()
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/octet-stream")
	stop := prog.run()
	ans, err := adminCall(client, req, *box)
	stop()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "accepted by %s: %s version %s (%d bytes), the box runs %s now\nnext: %s\n",
		*box, filepath.Base(bundle), ans.Version, ans.Bytes, ans.Running, ans.Next)
	return nil
}

// adminAnswer is the admin endpoint's JSON answer.
type adminAnswer struct {
	Status  string `json:"status"`
	Kind    string `json:"kind"`
	Error   string `json:"error"`
	Version string `json:"version"`
	Bytes   int64  `json:"bytes"`
	Running string `json:"running"`
	Next    string `json:"next"`
}

// rpcErrorAnswer is a JSON-RPC error, what possync answers for refusals
// before the admin handler (network, unknown route).
type rpcErrorAnswer struct {
	Error struct {
		Data struct {
			Message string `json:"message"`
		} `json:"data"`
	} `json:"error"`
}

// adminCall does req and maps the answer to an exit code and a message.
func adminCall(client *http.Client, req *http.Request, box string) (adminAnswer, error) {
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return adminAnswer{}, &exitError{code: 1, err: errors.New("update: interrupted")}
		}
		return adminAnswer{}, &exitError{code: updExitUnreachable, err: fmt.Errorf("update: cannot reach %s: %w%s", box, err, untrustedHint(err))}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var ans adminAnswer
	_ = json.Unmarshal(raw, &ans)
	msg := ans.Error
	if msg == "" {
		var r rpcErrorAnswer
		if json.Unmarshal(raw, &r) == nil {
			msg = r.Error.Data.Message
		}
	}
	if msg == "" {
		msg = strings.TrimSpace(string(raw))
	}
	switch {
	case resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusAccepted:
		return ans, nil
	case resp.StatusCode == http.StatusUnauthorized:
		return ans, &exitError{code: updExitToken, err: fmt.Errorf("update: %s refused the token: %s", box, msg)}
	case resp.StatusCode == http.StatusForbidden:
		return ans, &exitError{code: updExitNetwork, err: fmt.Errorf("update: %s refused this client: %s", box, msg)}
	case resp.StatusCode == http.StatusNotFound && strings.Contains(msg, "admin endpoint is off"):
		return ans, &exitError{code: updExitNoEndpoint, err: fmt.Errorf("update: %s: %s", box, msg)}
	case resp.StatusCode == http.StatusNotFound:
		return ans, &exitError{code: updExitNoEndpoint, err: fmt.Errorf("update: %s has no admin endpoint (a possync from before in-place updates, or not possync): copy the bundle onto its card or a USB stick instead (%s)", box, msg)}
	case ans.Status == "refused" && ans.Kind == "no_slots":
		return ans, &exitError{code: 1, err: fmt.Errorf("update: %s: %s", box, msg)}
	case ans.Status == "refused" && ans.Kind == "internal":
		return ans, &exitError{code: 1, err: fmt.Errorf("update: %s cannot take a bundle now (a problem on the box, not with the bundle): %s", box, msg)}
	case ans.Status == "refused":
		return ans, &exitError{code: updExitRefusedBundle, err: fmt.Errorf("update: %s refused the bundle (%s): %s", box, ans.Kind, msg)}
	}
	return ans, &exitError{code: 1, err: fmt.Errorf("update: %s answered %s: %s", box, resp.Status, msg)}
}

// progress counts uploaded bytes and prints them every 2 s.
type progress struct {
	total int64
	sent  atomic.Int64
	name  string
	w     io.Writer
	start time.Time
}

func (p *progress) Write(b []byte) (int, error) {
	p.sent.Add(int64(len(b)))
	return len(b), nil
}

func (p *progress) line() {
	sent := p.sent.Load()
	pct := 100.0
	if p.total > 0 {
		pct = float64(sent) * 100 / float64(p.total)
	}
	rate := float64(sent) / max(time.Since(p.start).Seconds(), 0.001) / (1 << 20)
	fmt.Fprintf(p.w, "uploading %s: %3.0f%% (%d of %d MiB, %.1f MiB/s)\n", p.name, pct, sent>>20, p.total>>20, rate)
}

// run prints progress until the returned stop is called, then a last line.
func (p *progress) run() (stop func()) {
	done := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				p.line()
			}
		}
	}()
	return func() {
		close(done)
		<-ended
		p.line()
	}
}
