package main

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"
)

//go:embed nchan.conf.tmpl
var nchanConf string

// nchanModules are where Debian (and derivatives) put the nchan module.
var nchanModules = []string{
	"/usr/lib/nginx/modules/ngx_nchan_module.so",
	"/usr/lib64/nginx/modules/ngx_nchan_module.so",
	"/usr/share/nginx/modules/ngx_nchan_module.so",
}

func findNchan() (nginx, module string) {
	nginx, _ = exec.LookPath("nginx")
	if nginx == "" {
		if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
			nginx = "/usr/sbin/nginx"
		}
	}
	for _, m := range nchanModules {
		if _, err := os.Stat(m); err == nil {
			return nginx, m
		}
	}
	return nginx, ""
}

// ensureNchan returns the nginx binary and the nchan module, installing
// the Debian packages nginx and libnginx-mod-nchan with apt-get when
// either is missing (apt-get update first if the install fails).
func ensureNchan(ctx context.Context, log io.Writer) (nginx, module string, err error) {
	if nginx, module = findNchan(); nginx != "" && module != "" {
		return nginx, module, nil
	}
	apt, err := exec.LookPath("apt-get")
	if err != nil {
		return "", "", errors.New("nginx with the nchan module is not installed and there is no apt-get: install nginx and libnginx-mod-nchan")
	}
	run := func(args ...string) error {
		fmt.Fprintf(log, "nchan peer: %s %v\n", apt, args)
		cmd := exec.CommandContext(ctx, apt, args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = log, log
		return cmd.Run()
	}
	install := []string{"install", "-y", "--no-install-recommends", "nginx", "libnginx-mod-nchan"}
	if err := run(install...); err != nil {
		if err := run("update"); err != nil {
			return "", "", fmt.Errorf("apt-get update: %w", err)
		}
		if err := run(install...); err != nil {
			return "", "", fmt.Errorf("apt-get install nginx libnginx-mod-nchan: %w", err)
		}
	}
	if nginx, module = findNchan(); nginx == "" || module == "" {
		return "", "", fmt.Errorf("after apt-get install: nginx %q, nchan module %q not found", nginx, module)
	}
	return nginx, module, nil
}

// nginxProc is a private nginx started by the bench.
type nginxProc struct {
	cmd    *exec.Cmd
	prefix string
	port   int
	done   chan error
}

func (n *nginxProc) base() string { return "http://127.0.0.1:" + strconv.Itoa(n.port) }

// startNginx renders the embedded configuration into a fresh prefix
// directory and starts nginx in the foreground on a free loopback port.
func startNginx(ctx context.Context, nginx, module string) (*nginxProc, error) {
	prefix, err := os.MkdirTemp("", "possync-bench-nchan-")
	if err != nil {
		return nil, fmt.Errorf("nginx prefix: %w", err)
	}
	// Workers run as nobody when started by root: they must reach the
	// prefix (nginx chowns the temp directories it creates).
	_ = os.Chmod(prefix, 0o755)
	if err := claimDir(prefix); err != nil {
		os.RemoveAll(prefix)
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(prefix)
		return nil, err
	}
	var conf bytes.Buffer
	tmpl := template.Must(template.New("nchan.conf").Parse(nchanConf))
	if err := tmpl.Execute(&conf, map[string]any{"Prefix": prefix, "Port": port, "Module": module}); err != nil {
		os.RemoveAll(prefix)
		return nil, fmt.Errorf("render nginx config: %w", err)
	}
	confPath := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(confPath, conf.Bytes(), 0o644); err != nil {
		os.RemoveAll(prefix)
		return nil, fmt.Errorf("write nginx config: %w", err)
	}
	n := &nginxProc{prefix: prefix, port: port, done: make(chan error, 1)}
	out, _ := os.Create(filepath.Join(prefix, "stderr.log"))
	n.cmd = exec.Command(nginx, "-p", prefix, "-c", confPath, "-e", filepath.Join(prefix, "error.log"))
	n.cmd.Stdout, n.cmd.Stderr = out, out
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM} // nginx goes with the bench
	if err := n.cmd.Start(); err != nil {
		out.Close()
		os.RemoveAll(prefix)
		return nil, fmt.Errorf("start nginx: %w", err)
	}
	go func() { n.done <- n.cmd.Wait(); out.Close() }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
		if err == nil {
			c.Close()
			return n, nil
		}
		select {
		case err := <-n.done:
			n.done <- err
			b, _ := os.ReadFile(filepath.Join(prefix, "error.log"))
			b2, _ := os.ReadFile(filepath.Join(prefix, "stderr.log"))
			os.RemoveAll(prefix)
			return nil, fmt.Errorf("nginx exited: %v\n%s%s", err, b, b2)
		case <-ctx.Done():
			n.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			n.stop()
			return nil, fmt.Errorf("nginx not listening on 127.0.0.1:%d after 15s", port)
		}
	}
}

// stop stops nginx by its process id (SIGTERM; SIGKILL to it and its workers after 10 s)
// and removes the prefix directory.
func (n *nginxProc) stop() {
	procs := withChildren(n.cmd.Process.Pid)
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-n.done:
		n.done <- err
	case <-time.After(10 * time.Second):
		for _, pid := range procs { // master and its workers, by pid
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		<-n.done
	}
	reportErrorLog(filepath.Join(n.prefix, "error.log"))
	os.RemoveAll(n.prefix)
}

// reportErrorLog prints the last lines of nginx's error log (warnings and
// errors only, see the configuration) to stderr, so a run in which nchan
// lost messages says why before the prefix directory goes.
func reportErrorLog(path string) {
	b, err := os.ReadFile(path)
	if err != nil || len(bytes.TrimSpace(b)) == 0 {
		return
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	fmt.Fprintf(os.Stderr, "nginx error log (%d lines, last %d):\n", len(lines), min(len(lines), 10))
	for _, l := range lines[max(0, len(lines)-10):] {
		fmt.Fprintf(os.Stderr, "  %s\n", l)
	}
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
