package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"syscall"
	"time"
)

// spawnConfig is the possync configuration of a spawned server: the
// defaults (SyncWrites on, 50 s poll hold) with the limits raised so that
// every simulated terminal fits: all of them poll from 127.0.0.1, so the
// per-address poll cap is lifted, and the connection and terminal limits
// are sized for maxTerms terminals with two connections each.
const spawnConfig = `# written by possync-bench -spawn
[http]
max_conns = %d

[discovery]
enabled = false

[security]
max_polls_per_client = 0
max_terminals = %d
max_multi_sessions = %d
max_databases = 64

[log]
level = "info"
`

// spawned is a possync server started by the bench as a child process.
type spawned struct {
	cmd  *exec.Cmd
	dir  string
	url  string
	log  string // the server's log file
	done chan error
}

// buildPossync builds cmd/possync of the module in the current directory
// (or above) into dir and returns the binary's path.
func buildPossync(ctx context.Context, dir string, stderr io.Writer) (string, error) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(dir, "possync")
	cmd := exec.CommandContext(ctx, gobin, "build", "-o", bin, "possync/cmd/possync")
	cmd.Stdout, cmd.Stderr = stderr, stderr
	fmt.Fprintf(stderr, "building possync (%s build possync/cmd/possync)…\n", gobin)
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build possync (run from inside the possync module, or pass -server-bin): %w", err)
	}
	return bin, nil
}

var listenRE = regexp.MustCompile(`msg="possync serving" listen=(\S+)`)

// spawnPossync starts bin as `possync serve` on 127.0.0.1 (a free port)
// with a fresh data directory and returns once it is serving.
func spawnPossync(ctx context.Context, bin string, maxTerms int, stderr io.Writer) (*spawned, error) {
	dir, err := os.MkdirTemp("", "possync-bench-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	if err := claimDir(dir); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s := &spawned{dir: dir, log: filepath.Join(dir, "server.log"), done: make(chan error, 1)}
	if bin == "" {
		if bin, err = buildPossync(ctx, dir, stderr); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	conf := filepath.Join(dir, "possync.toml")
	maxConns := max(4096, 2*maxTerms+512)
	if err := os.WriteFile(conf, fmt.Appendf(nil, spawnConfig, maxConns, max(1024, maxTerms+64), max(256, maxTerms+16)), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("write config: %w", err)
	}
	logf, err := os.Create(s.log)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("server log: %w", err)
	}
	cmd := exec.Command(bin, "serve", "-config", conf, "-listen", "127.0.0.1:0", "-tls-listen=",
		"-mdns=false", "-data", filepath.Join(dir, "data"))
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = logf, pw
	// The server goes with the bench, however the bench ends (SIGKILL,
	// SIGPIPE, a closed terminal): never a stray possync.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logf.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	s.cmd = cmd
	go func() { s.done <- cmd.Wait(); pw.Close(); logf.Close() }()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			fmt.Fprintln(logf, sc.Text())
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	select {
	case a := <-addr:
		s.url = "http://" + a
		return s, nil
	case err := <-s.done:
		s.done <- err
		b, _ := os.ReadFile(s.log)
		s.stop()
		return nil, fmt.Errorf("possync exited before serving: %v\n%s", err, b)
	case <-time.After(60 * time.Second):
		s.stop()
		return nil, errors.New("possync did not report serving within 60s")
	case <-ctx.Done():
		s.stop()
		return nil, ctx.Err()
	}
}

func (s *spawned) pid() int { return s.cmd.Process.Pid }

// stop ends the server (SIGTERM, SIGKILL after 10 s) and removes its
// directory.
func (s *spawned) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-s.done:
			s.done <- err
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	}
	os.RemoveAll(s.dir)
}
