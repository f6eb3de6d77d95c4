//go:build integration

package discovery_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"text/template"
	"time"
)

// The lab: two network namespaces, "box" and "pos", joined by a veth pair
// on a private /24 that exists only inside them. Each can get its own
// avahi-daemon, with a private D-Bus system bus and a private /run (a bind
// mount inside the mount namespace `ip netns exec` creates), so any number
// of labs and the host's own avahi coexist. Everything is torn down by
// t.Cleanup.
const (
	boxIP    = "10.250.0.1"
	boxIP2   = "10.250.0.11"
	posIP    = "10.250.0.2"
	labPlen  = "/24"
	httpPort = "8079"
)

// tools are the commands the lab runs; build/deps/discovery.txt installs them.
var tools = []string{"ip", "dbus-daemon", "avahi-daemon", "avahi-browse", "avahi-resolve", "getent", "curl", "mount", "sh"}

var labSeq atomic.Int32

type lab struct {
	t        *testing.T
	dir      string
	box, pos string  // namespace names; the veth end in each has the same name
	posBus   string  // DBUS_SYSTEM_BUS_ADDRESS of the POS side's avahi
	posRun   string  // /run of the POS side's avahi, for nss-mdns
	procs    []*proc // every process started, by startProc
}

// requireLab fails the test (never skips) when it cannot build a lab.
func requireLab(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("discovery integration tests need root (network namespaces, veth, mounts): run `sudo go test -tags integration ./discovery/...`")
	}
	var missing []string
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if _, err := os.Stat("/usr/share/doc/libnss-mdns"); err != nil {
		missing = append(missing, "libnss-mdns")
	}
	if len(missing) > 0 {
		t.Fatalf("missing tools %v: run `apt-get install $(cat build/deps/discovery.txt)` (or build/install-deps.sh discovery)", missing)
	}
}

// newLab creates the namespaces and the veth pair, box at boxIP, POS at
// posIP, and an avahi-daemon (named posHost) on the POS side.
func newLab(t *testing.T, posHost string) *lab {
	requireLab(t)
	n := labSeq.Add(1)
	prefix := fmt.Sprintf("pd%d%c", os.Getpid()%10000000, 'a'+rune(n%26))
	l := &lab{t: t, dir: t.TempDir(), box: prefix + "b", pos: prefix + "p"}
	for _, ns := range []string{l.box, l.pos} {
		l.run("ip", "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
		// Link-local IPv6 usable at once, no duplicate address detection wait.
		l.run("ip", "netns", "exec", ns, "sh", "-c",
			"for f in all default; do echo 0 > /proc/sys/net/ipv6/conf/$f/accept_dad; done 2>/dev/null || true")
		l.run("ip", "-n", ns, "link", "set", "lo", "up")
	}
	l.run("ip", "link", "add", l.box, "netns", l.box, "type", "veth", "peer", "name", l.pos, "netns", l.pos)
	l.run("ip", "-n", l.box, "addr", "add", boxIP+labPlen, "dev", l.box)
	l.run("ip", "-n", l.pos, "addr", "add", posIP+labPlen, "dev", l.pos)
	l.run("ip", "-n", l.box, "link", "set", l.box, "up")
	l.run("ip", "-n", l.pos, "link", "set", l.pos, "up")
	l.posBus, l.posRun = l.startAvahi(l.pos, posHost)
	l.nsswitch(l.pos)
	return l
}

// run runs a command that must succeed.
func (l *lab) run(name string, args ...string) string {
	l.t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		l.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// inPOS runs a command in the POS namespace, with the POS bus and /run.
func (l *lab) inPOS(ctx context.Context, name string, args ...string) *exec.Cmd {
	script := `mount --bind "$RUNDIR" /run && exec "$@"`
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", l.pos, "sh", "-c", script, "sh", name}, args...)...)
	cmd.Env = append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+l.posBus, "RUNDIR="+l.posRun)
	return cmd
}

// posOutput runs a command on the POS side and returns stdout, stderr and
// the exit code.
func (l *lab) posOutput(timeout time.Duration, name string, args ...string) (string, string, int) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := l.inPOS(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	return out.String(), errb.String(), code
}

// nsswitch makes `ip netns exec ns` see an nsswitch.conf that resolves .local
// names through nss-mdns (ip netns exec bind-mounts /etc/netns/NS/*).
func (l *lab) nsswitch(ns string) {
	dir := filepath.Join("/etc/netns", ns)
	_, statErr := os.Stat("/etc/netns")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() {
		_ = os.RemoveAll(dir)
		if os.IsNotExist(statErr) {
			_ = os.Remove("/etc/netns")
		}
	})
	conf := "hosts: files mdns4_minimal [NOTFOUND=return] dns\n"
	if err := os.WriteFile(filepath.Join(dir, "nsswitch.conf"), []byte(conf), 0o644); err != nil {
		l.t.Fatal(err)
	}
}

var (
	busConf   = template.Must(template.ParseFiles("testdata/system-bus.conf.tmpl"))
	avahiConf = template.Must(template.ParseFiles("testdata/avahi-daemon.conf.tmpl"))
)

// startAvahi starts a private D-Bus system bus and an avahi-daemon in ns,
// announcing hostName on the namespace's veth only. It returns the bus
// address and the directory mounted as /run.
func (l *lab) startAvahi(ns, hostName string) (bus, runDir string) {
	l.t.Helper()
	dir := filepath.Join(l.dir, ns+"-avahi")
	runDir = filepath.Join(dir, "run")
	if err := os.MkdirAll(filepath.Join(runDir, "avahi-daemon"), 0o755); err != nil {
		l.t.Fatal(err)
	}
	sock := filepath.Join(dir, "bus")
	writeTemplate(l.t, busConf, filepath.Join(dir, "bus.conf"), map[string]string{"Socket": sock})
	writeTemplate(l.t, avahiConf, filepath.Join(dir, "avahi.conf"), map[string]string{"HostName": hostName, "Interface": ns})
	bus = "unix:path=" + sock

	l.startProc(ns+"-dbus", nil, "dbus-daemon", "--config-file="+filepath.Join(dir, "bus.conf"), "--nofork", "--nopidfile")
	waitFor(l.t, 5*time.Second, "D-Bus socket "+sock, func() bool { _, err := os.Stat(sock); return err == nil })

	script := `mount --bind "$RUNDIR" /run && exec avahi-daemon -f "$CONF" --no-drop-root --no-chroot --no-rlimits`
	p := l.startProc(ns+"-avahi", []string{"DBUS_SYSTEM_BUS_ADDRESS=" + bus, "RUNDIR=" + runDir, "CONF=" + filepath.Join(dir, "avahi.conf")},
		"ip", "netns", "exec", ns, "sh", "-c", script)
	p.waitLog("Server startup complete", 10*time.Second)
	// avahi registers the link-local IPv6 address after "startup complete"
	// and probes it for another ~750 ms. A possync probe meeting that probe
	// is a simultaneous probe: avahi breaks the tie per record type, RFC
	// 6762 8.2 (and possync) on the whole record set, so both may yield.
	// Start tests from a settled network instead.
	if strings.Contains(l.run("ip", "-n", ns, "-6", "addr", "show", "dev", ns), "fe80::") {
		p.waitLog("Registering new address record for fe80", 5*time.Second)
		time.Sleep(time.Second)
	}
	return bus, runDir
}

func writeTemplate(t *testing.T, tmpl *template.Template, path string, data any) {
	t.Helper()
	var b bytes.Buffer
	if err := tmpl.Execute(&b, data); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// proc is a background process whose output is kept for waitLog.
type proc struct {
	t     *testing.T
	name  string
	cmd   *exec.Cmd
	out   *syncBuffer
	done  chan struct{}
	start time.Time
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startProc starts a process that t.Cleanup stops (SIGTERM, then SIGKILL).
func (l *lab) startProc(name string, env []string, prog string, args ...string) *proc {
	l.t.Helper()
	p := &proc{t: l.t, name: name, out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(prog, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.start = time.Now()
	if err := p.cmd.Start(); err != nil {
		l.t.Fatalf("start %s: %v", name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	l.procs = append(l.procs, p)
	l.t.Cleanup(func() {
		p.stop(3 * time.Second)
		if l.t.Failed() {
			l.t.Logf("--- output of %s:\n%s", name, p.out.String())
		}
	})
	return p
}

// stop sends SIGTERM and waits up to grace before SIGKILL. It reports how
// long the process took to exit.
func (p *proc) stop(grace time.Duration) time.Duration {
	select {
	case <-p.done:
		return 0
	default:
	}
	t0 := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	return time.Since(t0)
}

// waitLog waits until the output contains s.
func (p *proc) waitLog(s string, timeout time.Duration) {
	p.t.Helper()
	waitFor(p.t, timeout, fmt.Sprintf("%q in the output of %s", s, p.name), func() bool {
		select {
		case <-p.done:
			p.t.Fatalf("%s exited before printing %q:\n%s", p.name, s, p.out.String())
		default:
		}
		return strings.Contains(p.out.String(), s)
	})
}

// waitFor polls cond every 20 ms and fails the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	t0 := time.Now()
	for !cond() {
		if time.Since(t0) > timeout {
			t.Fatalf("no %s after %v", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(t0)
}
