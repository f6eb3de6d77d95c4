//go:build integration

// Integration tests with real mDNS peers: the real possync binary serves in
// the "box" namespace, and the "POS" namespace browses and resolves with
// avahi-browse, avahi-resolve, getent (nss-mdns), curl and possync discover.
// Run as root: go test -tags integration -v ./discovery/...
package discovery_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// possyncBin is the possync binary built by TestMain.
var possyncBin string

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "FAIL: discovery integration tests need root (network namespaces, veth, mounts): run `sudo go test -tags integration ./discovery/...`")
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "possync-discovery-it-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	possyncBin = filepath.Join(dir, "possync")
	build := exec.Command("go", "build", "-buildvcs=false", "-o", possyncBin, "possync/cmd/possync")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build possync:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// startBox runs `possync serve` in the box namespace with the given
// [discovery] settings (TOML lines) and waits until it announces.
func (l *lab) startBox(discoveryTOML string) *proc {
	l.t.Helper()
	data := filepath.Join(l.dir, "box-data")
	cfg := filepath.Join(l.dir, "possync.toml")
	if err := os.WriteFile(cfg, []byte("[discovery]\n"+discoveryTOML+"\n"), 0o644); err != nil {
		l.t.Fatal(err)
	}
	p := l.startProc("possync serve", []string{"LOG_LEVEL=debug"},
		"ip", "netns", "exec", l.box, possyncBin, "serve", "-listen", ":"+httpPort, "-data", data, "-config", cfg)
	p.waitLog("msg=announcing", 10*time.Second)
	return p
}

// browseLine is one resolved ("=") line of avahi-browse -p.
type browseLine struct {
	iface, proto, name, typ, host, addr, port, txt string
}

func parseBrowse(out string) (resolved []browseLine, removed []string) {
	for _, line := range strings.Split(out, "\n") {
		f := strings.SplitN(line, ";", 10)
		switch {
		case len(f) == 10 && f[0] == "=":
			resolved = append(resolved, browseLine{f[1], f[2], f[3], f[4], f[6], f[7], f[8], f[9]})
		case len(f) >= 4 && f[0] == "-":
			removed = append(removed, f[3])
		}
	}
	return resolved, removed
}

// avahiBrowse runs avahi-browse -rtp on the POS side until an IPv4 line for
// typ resolves to addr, and returns it.
func (l *lab) avahiBrowse(typ, addr string) browseLine {
	l.t.Helper()
	var last string
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		out, _, _ := l.posOutput(8*time.Second, "avahi-browse", "-rtp", typ)
		last = out
		lines, _ := parseBrowse(out)
		for _, b := range lines {
			if b.proto == "IPv4" && b.addr == addr {
				return b
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	l.t.Fatalf("avahi-browse -rtp %s never resolved to %s; last output:\n%s", typ, addr, last)
	return browseLine{}
}

type discovered struct {
	Instance  string   `json:"instance"`
	URLs      []string `json:"urls"`
	Host      string   `json:"host"`
	Port      int      `json:"port"`
	Addresses []string `json:"addresses"`
	Version   string   `json:"version"`
	ID        string   `json:"id"`
	API       string   `json:"api"`
	Scheme    string   `json:"scheme"`
	Path      string   `json:"path"`
}

// discover runs possync discover -json on the POS side.
func (l *lab) discover(timeout string) ([]discovered, string, int) {
	l.t.Helper()
	out, errOut, code := l.posOutput(20*time.Second, possyncBin, "discover", "-json", "-timeout", timeout)
	var boxes []discovered
	if err := json.Unmarshal([]byte(out), &boxes); err != nil {
		l.t.Fatalf("possync discover -json printed %q (stderr %q): %v", out, errOut, err)
	}
	return boxes, errOut, code
}

// resolve runs avahi-resolve -4 -n on the POS side until name resolves to
// want, and reports how long that took.
func (l *lab) resolve(name, want string, timeout time.Duration) time.Duration {
	l.t.Helper()
	t0 := time.Now()
	for {
		out, errOut, _ := l.posOutput(5*time.Second, "avahi-resolve", "-4", "-n", name)
		if f := strings.Fields(out); len(f) == 2 && f[1] == want {
			return time.Since(t0)
		}
		if time.Since(t0) > timeout {
			l.t.Fatalf("avahi-resolve -4 -n %s: %q %q after %v, want %s", name, out, errOut, timeout, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var idRE = regexp.MustCompile(`^[0-9a-f]{16}$`)

// TestDiscoverResolveGoodbye is the main scenario: no avahi on the box, so
// possync answers for possync.local itself.
func TestDiscoverResolveGoodbye(t *testing.T) {
	l := newLab(t, "pos-terminal")

	// Start to discovery: possync discover is already listening when the
	// box starts, as when an integrator runs it while plugging the box in.
	disc := l.startProc("possync discover (POS)", []string{"DBUS_SYSTEM_BUS_ADDRESS=" + l.posBus},
		"ip", "netns", "exec", l.pos, possyncBin, "discover", "-timeout", "8s")
	time.Sleep(300 * time.Millisecond) // let it bind before the box starts
	box := l.startBox("")
	found := waitFor(t, 5*time.Second, "a box in possync discover's output", func() bool {
		return strings.Contains(disc.out.String(), "http://"+boxIP+":"+httpPort)
	})
	startToFound := time.Since(box.start)
	t.Logf("timing: box start -> possync discover prints its URL: %v (after announcing: %v)", startToFound.Round(time.Millisecond), found.Round(time.Millisecond))
	if startToFound > 3*time.Second {
		t.Errorf("possync discover took %v from box start, want under 2 s (3 s allowed for a loaded CI machine)", startToFound)
	}
	if !strings.Contains(disc.out.String(), "http://possync.local:"+httpPort) {
		t.Errorf("discover output lacks the .local URL:\n%s", disc.out.String())
	}

	// avahi-browse sees the same service, port and TXT.
	b := l.avahiBrowse("_possync._tcp", boxIP)
	if b.port != httpPort || b.host != "possync.local" || !strings.HasPrefix(b.name, "possync-") {
		t.Errorf("avahi-browse: %+v, want port %s, host possync.local, instance possync-<id>", b, httpPort)
	}
	for _, kv := range []string{`"api=pos_multi_session_sync/12"`, `"path=/"`, `"scheme=http"`, `"version=dev"`} {
		if !strings.Contains(b.txt, kv) {
			t.Errorf("avahi-browse TXT %s lacks %s", b.txt, kv)
		}
	}
	if !regexp.MustCompile(`"id=[0-9a-f]{16}"`).MatchString(b.txt) {
		t.Errorf("avahi-browse TXT %s lacks a 16-hex-digit id", b.txt)
	}
	if h := l.avahiBrowse("_http._tcp", boxIP); h.port != httpPort || !strings.Contains(h.txt, `"path=/"`) || h.name != b.name {
		t.Errorf("_http._tcp: %+v, want the same instance on port %s with path=/", h, httpPort)
	}

	// possync discover -json agrees.
	boxes, errOut, code := l.discover("2s")
	if code != 0 || len(boxes) != 1 {
		t.Fatalf("possync discover -json: exit %d, %d boxes (stderr %q)", code, len(boxes), errOut)
	}
	d := boxes[0]
	wantURLs := []string{"http://" + boxIP + ":" + httpPort, "http://possync.local:" + httpPort}
	if d.Instance != b.name || d.Port != 8079 || d.API != "pos_multi_session_sync/12" || d.Scheme != "http" || d.Path != "/" ||
		!idRE.MatchString(d.ID) || strings.Join(d.URLs, " ") != strings.Join(wantURLs, " ") {
		t.Errorf("possync discover -json = %+v, want instance %s, URLs %v", d, b.name, wantURLs)
	}

	// The host name resolves with no avahi on the box, through avahi and
	// through the OS resolver (nss-mdns), and the status page opens.
	t.Logf("timing: avahi-resolve -n possync.local answered in %v", l.resolve("possync.local", boxIP, 5*time.Second).Round(time.Millisecond))
	if out, errOut, code := l.posOutput(10*time.Second, "getent", "hosts", "possync.local"); code != 0 || !strings.HasPrefix(out, boxIP+" ") {
		t.Errorf("getent hosts possync.local = %q (exit %d, %s), want %s", out, code, errOut, boxIP)
	}
	if out, errOut, code := l.posOutput(10*time.Second, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "http://possync.local:"+httpPort+"/"); code != 0 || out != "200" {
		t.Errorf("curl http://possync.local:%s/ = %q (exit %d, %s), want 200", httpPort, out, code, errOut)
	}

	// Goodbye: a running browse drops the box when it stops.
	browse := l.startProc("avahi-browse -rp (POS)", []string{"DBUS_SYSTEM_BUS_ADDRESS=" + l.posBus},
		"ip", "netns", "exec", l.pos, "stdbuf", "-oL", "avahi-browse", "-rp", "_possync._tcp")
	browse.waitLog("=;"+l.pos+";IPv4;"+b.name, 10*time.Second)
	exit := box.stop(5 * time.Second)
	gone := waitFor(t, 5*time.Second, "the box leaving avahi-browse", func() bool {
		_, removed := parseBrowse(browse.out.String())
		return len(removed) > 0
	})
	t.Logf("timing: SIGTERM -> possync exited %v; -> avahi-browse dropped the box %v", exit.Round(time.Millisecond), (gone + exit).Round(time.Millisecond))
	if exit > 2*time.Second {
		t.Errorf("possync took %v to exit after SIGTERM", exit)
	}
	if !strings.Contains(box.out.String(), "sent mDNS goodbye") {
		t.Errorf("box log lacks the goodbye:\n%s", box.out.String())
	}

	// With no box, discover fails helpfully.
	boxes, errOut, code = l.discover("1s")
	if code != 1 || len(boxes) != 0 || !strings.Contains(errOut, "possync discover -timeout 10s") || !strings.Contains(errOut, "isolation") {
		t.Errorf("discover with no box: exit %d, %d boxes, stderr %q; want exit 1 with advice", code, len(boxes), errOut)
	}
}

// TestAddressChange moves the box to a new address on its veth: the new
// address is announced (and the old one withdrawn) within a few seconds.
func TestAddressChange(t *testing.T) {
	l := newLab(t, "pos-terminal")
	box := l.startBox("")
	l.resolve("possync.local", boxIP, 5*time.Second)
	// zeroconf's own start-up announcements run for about 3.5 s; move the
	// box after them, so what is measured is possync's re-announcement.
	time.Sleep(4*time.Second - time.Since(box.start))

	l.run("ip", "-n", l.box, "addr", "del", boxIP+labPlen, "dev", l.box)
	l.run("ip", "-n", l.box, "addr", "add", boxIP2+labPlen, "dev", l.box)
	took := l.resolve("possync.local", boxIP2, 8*time.Second)
	t.Logf("timing: address change -> avahi-resolve returns the new address: %v", took.Round(time.Millisecond))

	b := l.avahiBrowse("_possync._tcp", boxIP2)
	if b.port != httpPort {
		t.Errorf("after the move avahi-browse = %+v", b)
	}
	boxes, errOut, code := l.discover("2s")
	if code != 0 || len(boxes) != 1 || boxes[0].URLs[0] != "http://"+boxIP2+":"+httpPort {
		t.Errorf("possync discover after the move: exit %d, %+v (stderr %q), want first URL http://%s:%s", code, boxes, errOut, boxIP2, httpPort)
	}
	for _, a := range boxes[0].Addresses {
		if a == boxIP {
			t.Errorf("possync discover still reports the old address: %v", boxes[0].Addresses)
		}
	}
}

// TestHostNameConflict: another device (here the POS's avahi) already owns
// possync.local. The box must not fight: it warns and moves to
// possync-<short id>.local, which resolves to it.
func TestHostNameConflict(t *testing.T) {
	l := newLab(t, "possync")
	box := l.startBox("")
	if !strings.Contains(box.out.String(), "another device already answers for the host name") {
		t.Errorf("box log lacks the conflict warning:\n%s", box.out.String())
	}
	boxes, errOut, code := l.discover("2s")
	if code != 0 || len(boxes) != 1 {
		t.Fatalf("possync discover: exit %d, %+v (stderr %q)", code, boxes, errOut)
	}
	host := boxes[0].Host
	if !regexp.MustCompile(`^possync-[0-9a-f]{6}\.local$`).MatchString(host) {
		t.Fatalf("box host = %q, want possync-<short id>.local", host)
	}
	l.resolve(host, boxIP, 5*time.Second)
	l.resolve("possync.local", posIP, 5*time.Second) // still the other device's
}

// TestOSResponderOnBox: like the SD-card image, avahi runs on the box with
// host name possync. possync leaves the name to it and shares UDP 5353.
func TestOSResponderOnBox(t *testing.T) {
	l := newLab(t, "pos-terminal")
	l.startAvahi(l.box, "possync")
	box := l.startBox("")
	if !strings.Contains(box.out.String(), "the OS mDNS responder answers for the host name") {
		t.Errorf("box log does not say the OS answers for the host name:\n%s", box.out.String())
	}
	b := l.avahiBrowse("_possync._tcp", boxIP)
	if b.host != "possync.local" || b.port != httpPort {
		t.Errorf("avahi-browse = %+v, want possync.local:%s", b, httpPort)
	}
	l.resolve("possync.local", boxIP, 5*time.Second)
	boxes, errOut, code := l.discover("2s")
	if code != 0 || len(boxes) != 1 || boxes[0].Host != "possync.local" {
		t.Errorf("possync discover: exit %d, %+v (stderr %q)", code, boxes, errOut)
	}
}

// TestLoopbackOnly: a machine with no network at all (only lo) still
// announces to itself, so `possync discover` on the box finds it.
func TestLoopbackOnly(t *testing.T) {
	requireLab(t)
	l := &lab{t: t, dir: t.TempDir(), box: fmt.Sprintf("pd%dlo", os.Getpid()%10000000)}
	l.run("ip", "netns", "add", l.box)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", l.box).Run() })
	l.run("ip", "-n", l.box, "link", "set", "lo", "up")
	box := l.startBox("")
	if !strings.Contains(box.out.String(), `interfaces="lo[`) {
		t.Errorf("box did not fall back to loopback:\n%s", box.out.String())
	}
	out, err := exec.Command("ip", "netns", "exec", l.box, possyncBin, "discover", "-timeout", "2s").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "http://127.0.0.1:"+httpPort) {
		t.Errorf("possync discover on the box: %v\n%s", err, out)
	}
}
