package main

// The HTTP listener under real faults, in real child processes: running
// out of file descriptors (prlimit), a listening socket broken for good,
// and the systemd watchdog while accepting fails (issue 13).

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fdLimit is the open-file limit the children run under: possync needs
// about 16 descriptors of its own, so a few dozen connections exhaust it.
const fdLimit = 40

func prlimit(t *testing.T) []string {
	t.Helper()
	path, err := exec.LookPath("prlimit")
	if err != nil {
		t.Skip("prlimit (util-linux) is not installed")
	}
	return []string{path, fmt.Sprintf("--nofile=%d:%d", fdLimit, fdLimit)}
}

// openFDs counts the open file descriptors of process pid.
func openFDs(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// exhaustFDs connects to c until the child has used up its file limit,
// and returns the connections; closing them releases the descriptors.
func exhaustFDs(t *testing.T, c *child) []net.Conn {
	t.Helper()
	var conns []net.Conn
	t.Cleanup(func() {
		for _, cn := range conns {
			cn.Close()
		}
	})
	addr := strings.TrimPrefix(c.url, "http://")
	for range fdLimit {
		cn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		conns = append(conns, cn)
	}
	waitFor(t, 10*time.Second, "the child at its file limit", func() bool { return openFDs(t, c.cmd.Process.Pid) >= fdLimit })
	return conns
}

// waitFor polls cond every 20 ms until it holds, or fails the test after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// healthzOK reports whether GET /healthz on a new connection answers 200.
func healthzOK(url string) bool {
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

// Running out of file descriptors makes accept fail with EMFILE; once the
// connections are gone, the server must answer again, and the log must say
// what happened.
func TestAcceptRecoversFromFileLimit(t *testing.T) {
	c := startChildWith(t, childOptions{dir: t.TempDir(), prefix: prlimit(t)})
	if !healthzOK(c.url) {
		t.Fatalf("/healthz not ok at start\n%s", c.logs)
	}
	conns := exhaustFDs(t, c)
	for _, cn := range conns {
		cn.Close()
	}
	t0 := time.Now()
	waitFor(t, 15*time.Second, "/healthz answering 200 after the connections closed", func() bool { return healthzOK(c.url) })
	t.Logf("timing: connections closed -> /healthz answers 200 on a new connection: %v", time.Since(t0).Round(time.Millisecond))
	// The child's log reaches us through a pipe copied by a goroutine:
	// give the last lines a moment to arrive.
	told := func() bool {
		logs := c.logs.String()
		return strings.Contains(logs, "accepting a connection failed; retrying") &&
			strings.Contains(logs, "too many open files") && strings.Contains(logs, "accepting connections again")
	}
	deadline := time.Now().Add(10 * time.Second)
	for !told() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if !told() {
		t.Errorf("logs do not tell about the failed accepts:\n%s", c.logs.String())
	}
}

// While accepting fails the watchdog is not fed (so systemd restarts a
// server nobody can reach); it is fed again once accepting works.
func TestWatchdogCoversListener(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn := listenNotify(t, sock)
	c := startChildWith(t, childOptions{dir: t.TempDir(), prefix: prlimit(t),
		env: []string{"NOTIFY_SOCKET=" + sock, "WATCHDOG_USEC=200000"}}) // fed every 100 ms
	waitDatagram(t, conn, "READY=1")
	waitDatagram(t, conn, "WATCHDOG=1")

	conns := exhaustFDs(t, c)
	failed := func() int { return strings.Count(c.logs.String(), "health check failed, not feeding the watchdog") }
	waitFor(t, 15*time.Second, "a failed health check", func() bool { return failed() >= 1 })
	// Datagrams sent before that check are queued: drain them, then no
	// ping may arrive across further failed checks.
	for recv(t, conn, 10*time.Millisecond) != "" {
	}
	n := failed()
	waitFor(t, 15*time.Second, "three more failed health checks", func() bool { return failed() >= n+3 })
	if got := recv(t, conn, 10*time.Millisecond); got != "" {
		t.Fatalf("received %q while accepting fails, want no watchdog ping\n%s", got, c.logs)
	}
	if logs := c.logs.String(); !strings.Contains(logs, "too many open files") {
		t.Errorf("the failed health check does not name the cause:\n%s", logs)
	}

	for _, cn := range conns {
		cn.Close()
	}
	t0 := time.Now()
	waitDatagram(t, conn, "WATCHDOG=1")
	t.Logf("timing: connections closed -> watchdog fed again: %v", time.Since(t0).Round(time.Millisecond))
}

// waitDatagram reads notify datagrams until want arrives (15 s at most).
func waitDatagram(t *testing.T, conn *net.UnixConn, want string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if got := recv(t, conn, time.Until(deadline)); strings.Contains(got, want) {
			return
		}
	}
	t.Fatalf("no %q on the notify socket within 15s", want)
}

// A listening socket broken for good (here: shut down from outside, which
// makes accept fail with EINVAL) ends `serve` with a non-zero status, so
// the supervisor restarts it, instead of a process that lives on deaf.
func TestServeExitsWhenListenerFails(t *testing.T) {
	c := startChild(t, t.TempDir())
	fd := stealListener(t, c)
	t0 := time.Now()
	if err := unix.Shutdown(fd, unix.SHUT_RD); err != nil {
		t.Fatalf("shutdown listening socket: %v", err)
	}
	select {
	case err := <-c.done:
		t.Logf("timing: listening socket broken -> serve exited: %v (%v)", time.Since(t0).Round(time.Millisecond), err)
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() == 0 {
			t.Fatalf("serve exited with %v, want a non-zero status\n%s", err, c.logs)
		}
		if !strings.Contains(c.logs.String(), "http listener stopped for good") {
			t.Errorf("logs do not say the listener stopped:\n%s", c.logs)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("serve still running 20s after its listener broke\n%s", c.logs)
	}
}

// stealListener returns a duplicate, in this process, of the child's
// listening socket (pidfd_getfd, Linux 5.6+).
func stealListener(t *testing.T, c *child) int {
	t.Helper()
	pid := c.cmd.Process.Pid
	_, portText, _ := net.SplitHostPort(strings.TrimPrefix(c.url, "http://"))
	port, _ := strconv.Atoi(portText)
	inode := listenInode(t, pid, port)
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		link, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name()))
		if link != "socket:["+inode+"]" {
			continue
		}
		target, _ := strconv.Atoi(e.Name())
		pidfd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			t.Skipf("pidfd_open: %v (needs Linux 5.3+)", err)
		}
		defer unix.Close(pidfd)
		fd, err := unix.PidfdGetfd(pidfd, target, 0)
		if err != nil {
			t.Skipf("pidfd_getfd: %v (needs Linux 5.6+ and ptrace rights on the child)", err)
		}
		t.Cleanup(func() { unix.Close(fd) })
		return fd
	}
	t.Fatalf("no fd of process %d is the listening socket (inode %s)", pid, inode)
	return -1
}

// listenInode finds the inode of the socket listening on 127.0.0.1:port in
// process pid's network namespace.
func listenInode(t *testing.T, pid, port int) string {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/net/tcp", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := fmt.Sprintf("0100007F:%04X", port)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 9 && fields[1] == want && fields[3] == "0A" { // 0A = LISTEN
			return fields[9]
		}
	}
	t.Fatalf("no socket listening on 127.0.0.1:%d in /proc/%d/net/tcp", port, pid)
	return ""
}

// check-config warns (and still passes) when http.max_conns does not fit
// the open-file limit of the process.
func TestCheckConfigWarnsAboutFileLimit(t *testing.T) {
	path, err := exec.LookPath("prlimit")
	if err != nil {
		t.Skip("prlimit (util-linux) is not installed")
	}
	cmd := exec.Command(path, "--nofile=1024:1024", os.Args[0], "-test.run=^TestHelperProcess$", "--",
		"check-config", "-config", "../../testdata/possync.example.toml")
	cmd.Env = append(os.Environ(), "POSSYNC_HELPER_PROCESS=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("check-config under a 1024 file limit: %v\n%s", err, out)
	}
	for _, want := range []string{"warning: http.max_conns = 4096 does not fit this process's open-file limit of 1024", "LimitNOFILE", ": OK"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("check-config output lacks %q:\n%s", want, out)
		}
	}
}
