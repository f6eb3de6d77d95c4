//go:build integration

package discovery_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The shop: two boxes and a POS terminal on one switch. The switch is a
// bridge in its own namespace; each box and the POS have a veth into it. A
// box's link can start down (cable not plugged in yet, or the switch still
// booting) and come up later, and a box can start on a segment of its own
// that is joined to the shop later (two switches connected). Namespaces are
// named pm<pid><seq>{w,a,b,p} so they collide with no other lab.
const (
	shopA   = "10.251.0.1"
	shopB   = "10.251.0.2"
	shopPOS = "10.251.0.9"
)

// Universally administered MACs, as a Pi's NIC has: the box id mixes in the
// MAC, so two boxes running from the same machine id (a cloned card) differ.
var shopMAC = map[string]string{"a": "b8:27:eb:00:00:0a", "b": "b8:27:eb:00:00:0b"}

type shop struct {
	*lab
	sw    string            // switch namespace
	boxes map[string]string // "a"/"b" -> namespace (its veth has the same name)
}

// shopBox says how one box is set up.
type shopBox struct {
	avahi    bool   // avahi-daemon on the box with host-name=possync, as on the SD-card image
	linkDown bool   // start with the box's link down
	apart    bool   // start on a segment of its own (link up, not joined to the shop)
	toml     string // [discovery] settings
}

func newShop(t *testing.T) *shop {
	requireLab(t)
	n := labSeq.Add(1)
	prefix := fmt.Sprintf("pm%d%c", os.Getpid()%100000, 'a'+rune(n%26))
	s := &shop{lab: &lab{t: t, dir: t.TempDir(), pos: prefix + "p"}, sw: prefix + "w",
		boxes: map[string]string{"a": prefix + "a", "b": prefix + "b"}}
	for _, ns := range []string{s.sw, s.pos, s.boxes["a"], s.boxes["b"]} {
		s.run("ip", "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
		s.run("ip", "netns", "exec", ns, "sh", "-c",
			"for f in all default; do echo 0 > /proc/sys/net/ipv6/conf/$f/accept_dad; done 2>/dev/null || true")
		s.run("ip", "-n", ns, "link", "set", "lo", "up")
	}
	s.run("ip", "-n", s.sw, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
	s.run("ip", "-n", s.sw, "link", "set", "br0", "up")
	s.plug(s.pos, shopPOS, "")
	s.run("ip", "-n", s.sw, "link", "set", s.pos+"s", "master", "br0")
	s.run("ip", "-n", s.pos, "link", "set", s.pos, "up")
	s.posBus, s.posRun = s.startAvahi(s.pos, "pos-terminal")
	s.nsswitch(s.pos)
	return s
}

// plug makes the veth pair ns <-> switch (ns+"s"), with addr on the ns end;
// the switch end is up, the ns end still down.
func (s *shop) plug(ns, addr, mac string) {
	s.run("ip", "link", "add", ns, "netns", ns, "type", "veth", "peer", "name", ns+"s", "netns", s.sw)
	if mac != "" {
		s.run("ip", "-n", ns, "link", "set", ns, "address", mac)
	}
	s.run("ip", "-n", ns, "addr", "add", addr+"/24", "dev", ns)
	s.run("ip", "-n", s.sw, "link", "set", ns+"s", "up")
}

// startBox sets box ("a" or "b") up as configured and starts possync on it.
// It waits until possync announces (on loopback when the link is down).
func (s *shop) startBox(box string, cfg shopBox) *proc {
	s.t.Helper()
	ns, addr := s.boxes[box], shopA
	if box == "b" {
		addr = shopB
	}
	s.plug(ns, addr, shopMAC[box])
	if !cfg.apart {
		s.run("ip", "-n", s.sw, "link", "set", ns+"s", "master", "br0")
	}
	if !cfg.linkDown {
		s.run("ip", "-n", ns, "link", "set", ns, "up")
	}
	if cfg.avahi {
		s.startAvahi(ns, "possync")
	}
	conf := filepath.Join(s.dir, box+".toml")
	if err := os.WriteFile(conf, []byte("[discovery]\n"+cfg.toml+"\n"), 0o644); err != nil {
		s.t.Fatal(err)
	}
	p := s.startProc("possync serve (box "+box+")", []string{"LOG_LEVEL=debug"},
		"ip", "netns", "exec", ns, possyncBin, "serve", "-listen", ":"+httpPort,
		"-data", filepath.Join(s.dir, box+"-data"), "-config", conf)
	p.waitLog("msg=announcing", 10*time.Second)
	return p
}

// linkUp plugs the cables of the given boxes in, as close together as two
// commands get.
func (s *shop) linkUp(boxes ...string) time.Time {
	t0 := time.Now()
	for _, b := range boxes {
		s.run("ip", "-n", s.boxes[b], "link", "set", s.boxes[b], "up")
	}
	return t0
}

// join connects a box started apart to the shop's switch.
func (s *shop) join(box string) time.Time {
	s.run("ip", "-n", s.sw, "link", "set", s.boxes[box]+"s", "master", "br0")
	return time.Now()
}

// avahiLog returns the log of the avahi-daemon on box.
func (s *shop) avahiLog(box string) string {
	for _, p := range s.procs {
		if p.name == s.boxes[box]+"-avahi" {
			return p.out.String()
		}
	}
	return ""
}

// resolves reports what name resolves to from the POS (avahi-resolve -4),
// "" when nobody answers.
func (s *shop) resolves(name string) string {
	out, _, _ := s.posOutput(5*time.Second, "avahi-resolve", "-4", "-n", name)
	if f := strings.Fields(out); len(f) == 2 {
		return f[1]
	}
	return ""
}

// settled waits until possync discover lists both boxes, each with its own
// address, its own instance name, and an SRV host that resolves to that
// same box. It returns the boxes by address.
func (s *shop) settled(timeout time.Duration) map[string]discovered {
	s.t.Helper()
	var last []discovered
	var why string
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		boxes, _, _ := s.discover("2s")
		last = boxes
		got, ok := map[string]discovered{}, true
		for _, d := range boxes {
			if len(d.Addresses) > 0 {
				got[d.Addresses[0]] = d
			}
		}
		switch {
		case len(got) != 2 || got[shopA].Instance == "" || got[shopB].Instance == "":
			ok, why = false, "possync discover does not list both boxes"
		case got[shopA].Instance == got[shopB].Instance:
			ok, why = false, "both boxes use the same instance name"
		}
		for addr, d := range got {
			if !ok {
				break
			}
			if r := s.resolves(d.Host); r != addr {
				ok, why = false, fmt.Sprintf("box %s announces SRV host %s, which resolves to %q", addr, d.Host, r)
			}
		}
		if ok {
			return got
		}
		time.Sleep(500 * time.Millisecond)
	}
	s.t.Fatalf("the shop never settled after %v: %s; last possync discover: %+v", timeout, why, last)
	return nil
}

// TestLateLinkSecondBoxWithAvahi: two boxes as the SD-card image sets them
// up (avahi with host-name=possync, then possync). Box A is up and owns
// possync.local; box B starts with its link down and gets it later. A keeps
// possync.local, B's services point at a name that resolves to B.
func TestLateLinkSecondBoxWithAvahi(t *testing.T) {
	s := newShop(t)
	s.startBox("a", shopBox{avahi: true})
	waitFor(t, 10*time.Second, "possync.local resolving to box A", func() bool { return s.resolves("possync.local") == shopA })
	b := s.startBox("b", shopBox{avahi: true, linkDown: true})
	t0 := s.linkUp("b")
	s.announcedAgain(t0, b)
	got := s.settled(30 * time.Second)
	t.Logf("timing: link up -> both boxes listed, each SRV host resolving to its own box: %v", time.Since(t0).Round(time.Millisecond))
	if got[shopA].Host != "possync.local" || got[shopB].Host == "possync.local" {
		t.Errorf("hosts A %q, B %q: want A to keep possync.local and B to use another name", got[shopA].Host, got[shopB].Host)
	}
	time.Sleep(3 * time.Second) // let any late conflict play out
	if r := s.resolves("possync.local"); r != shopA {
		t.Errorf("possync.local resolves to %q, want box A %s", r, shopA)
	}
	if log := s.avahiLog("a"); strings.Contains(log, "conflict") {
		t.Errorf("box A's avahi saw a conflict and gave possync.local up:\n%s", log)
	}
}

// TestLateLinkSecondBoxAlone: the same without avahi on the boxes: possync
// answers for possync.local itself.
func TestLateLinkSecondBoxAlone(t *testing.T) {
	s := newShop(t)
	a := s.startBox("a", shopBox{})
	waitFor(t, 10*time.Second, "possync.local resolving to box A", func() bool { return s.resolves("possync.local") == shopA })
	b := s.startBox("b", shopBox{linkDown: true})
	t0 := s.linkUp("b")
	s.announcedAgain(t0, b)
	got := s.settled(30 * time.Second)
	t.Logf("timing: link up -> both boxes listed, each SRV host resolving to its own box: %v", time.Since(t0).Round(time.Millisecond))
	if got[shopA].Host != "possync.local" || got[shopB].Host == "possync.local" {
		t.Errorf("hosts A %q, B %q: want A to keep possync.local and B to use another name", got[shopA].Host, got[shopB].Host)
	}
	time.Sleep(3 * time.Second)
	if r := s.resolves("possync.local"); r != shopA {
		t.Errorf("possync.local resolves to %q, want box A %s", r, shopA)
	}
	if strings.Contains(a.out.String(), "moves to another name") {
		t.Errorf("box A gave its host name up:\n%s", a.out.String())
	}
	if !strings.Contains(b.out.String(), "link change") {
		t.Errorf("box B did not probe again on the link change:\n%s", b.out.String())
	}
}

// TestBothLinksLate: after a power cut the Pis boot before the switch, so
// both boxes start with their links down and get them at the same moment.
// One box ends up owning possync.local, the other uses its fallback name.
func TestBothLinksLate(t *testing.T) {
	for _, avahi := range []bool{true, false} {
		name := "alone"
		if avahi {
			name = "avahi"
		}
		t.Run(name, func(t *testing.T) {
			s := newShop(t)
			a := s.startBox("a", shopBox{avahi: avahi, linkDown: true})
			b := s.startBox("b", shopBox{avahi: avahi, linkDown: true})
			t0 := s.linkUp("a", "b")
			s.announcedAgain(t0, a, b)
			got := s.settled(30 * time.Second)
			t.Logf("timing: links up -> both boxes listed, each SRV host resolving to its own box: %v", time.Since(t0).Round(time.Millisecond))
			var owners []string
			for addr, d := range got {
				if d.Host == "possync.local" {
					owners = append(owners, addr)
				}
			}
			if len(owners) != 1 {
				t.Fatalf("boxes announcing possync.local: %v, want exactly one (%+v)", owners, got)
			}
			time.Sleep(3 * time.Second)
			if r := s.resolves("possync.local"); r != owners[0] {
				t.Errorf("possync.local resolves to %q, want %s, the box announcing it", r, owners[0])
			}
		})
	}
}

// TestSameInstanceName: two boxes configured with the same instance name.
// The second finds the name taken while probing and becomes
// "Bar counter-<short id>"; both are listed.
func TestSameInstanceName(t *testing.T) {
	s := newShop(t)
	s.startBox("a", shopBox{avahi: true, toml: `instance = "Bar counter"`})
	s.startBox("b", shopBox{avahi: true, toml: `instance = "Bar counter"`})
	got := s.settled(30 * time.Second)
	if got[shopA].Instance != "Bar counter" || got[shopB].Instance != "Bar counter-"+got[shopB].ID[:6] {
		t.Errorf("instances A %q, B %q (id %s): want A to keep \"Bar counter\" and B to become \"Bar counter-<short id>\"",
			got[shopA].Instance, got[shopB].Instance, got[shopB].ID)
	}
	if got[shopA].ID == got[shopB].ID {
		t.Errorf("both boxes have id %s although their NICs differ", got[shopA].ID)
	}
	s.browseBoth("_possync._tcp")
}

// TestLaterInstanceConflict: two boxes with the same instance name start on
// segments of their own, each alone with its name, and the segments are
// joined later (two switches connected). Neither probes then; the conflict
// shows when both answer the POS's browse, and one box renames itself.
func TestLaterInstanceConflict(t *testing.T) {
	s := newShop(t)
	s.startBox("a", shopBox{toml: "instance = \"Bar counter\"\nhostname = \"bar-a\""})
	s.startBox("b", shopBox{apart: true, toml: "instance = \"Bar counter\"\nhostname = \"bar-b\""})
	waitFor(t, 10*time.Second, "box A in possync discover", func() bool {
		boxes, _, _ := s.discover("1s")
		return len(boxes) == 1
	})
	t0 := s.join("b")
	got := s.settled(30 * time.Second)
	t.Logf("timing: segments joined -> both boxes listed with their own names: %v", time.Since(t0).Round(time.Millisecond))
	names := []string{got[shopA].Instance, got[shopB].Instance}
	if !slices.Contains(names, "Bar counter") {
		t.Errorf("instances %q: want one box to keep \"Bar counter\"", names)
	}
	s.browseBoth("_possync._tcp")
}

// announcedAgain waits until each box has probed its names on the new link
// and announced again, and logs how long that took after t0 (from the
// box's own log time stamp).
func (s *shop) announcedAgain(t0 time.Time, boxes ...*proc) {
	s.t.Helper()
	const msg = `msg="announcing again"`
	for _, b := range boxes {
		waitFor(s.t, 20*time.Second, b.name+" announcing again", func() bool { return strings.Contains(b.out.String(), msg) })
		var at time.Time
		var names []string
		for _, line := range strings.Split(b.out.String(), "\n") {
			if !strings.Contains(line, msg) {
				continue
			}
			for _, f := range strings.Fields(line) {
				switch {
				case strings.HasPrefix(f, "time="):
					at, _ = time.Parse(time.RFC3339Nano, strings.TrimPrefix(f, "time="))
				case strings.HasPrefix(f, "host="), strings.HasPrefix(f, "instance="):
					names = append(names, f)
				}
			}
			break
		}
		s.t.Logf("timing: link up -> %s probed and announced again: %v (%s)", b.name, at.Sub(t0).Round(time.Millisecond), strings.Join(names, " "))
	}
}

// browseBoth checks that avahi-browse on the POS resolves both boxes.
func (s *shop) browseBoth(typ string) {
	s.t.Helper()
	var last string
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		out, _, _ := s.posOutput(8*time.Second, "avahi-browse", "-rtp", typ)
		last = out
		lines, _ := parseBrowse(out)
		seen := map[string]string{}
		for _, b := range lines {
			if b.proto == "IPv4" {
				seen[b.addr] = b.name
			}
		}
		if seen[shopA] != "" && seen[shopB] != "" && seen[shopA] != seen[shopB] {
			return
		}
		time.Sleep(300 * time.Millisecond)
	}
	s.t.Errorf("avahi-browse -rtp %s never listed both boxes under their own names; last output:\n%s", typ, last)
}

// TestClonedCard: a card copied after its first boot runs in a second Pi.
// Both boxes read the same /etc/machine-id (the namespaces share the host's
// file system) and hold the same box-id file in their data directories,
// and neither configures an instance name. Each box still gets its own id
// (the MAC of its NIC is mixed in), so each announces its own
// possync-<short id> without a rename, and both are listed.
func TestClonedCard(t *testing.T) {
	if b, err := os.ReadFile("/etc/machine-id"); err != nil || len(strings.TrimSpace(string(b))) != 32 {
		t.Skipf("no machine id to share (%v): the boxes would not be clones", err)
	}
	s := newShop(t)
	for _, box := range []string{"a", "b"} {
		dir := filepath.Join(s.dir, box+"-data")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "box-id"), []byte("0123456789abcdef\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s.startBox("a", shopBox{avahi: true})
	t0 := time.Now()
	s.startBox("b", shopBox{avahi: true})
	got := s.settled(30 * time.Second)
	t.Logf("timing: second clone started -> both boxes listed: %v", time.Since(t0).Round(time.Millisecond))
	for _, addr := range []string{shopA, shopB} {
		d := got[addr]
		if d.Instance != "possync-"+d.ID[:6] {
			t.Errorf("box %s: instance %q with id %s, want possync-%s (its own id, no rename)", addr, d.Instance, d.ID, d.ID[:6])
		}
	}
	if got[shopA].ID == got[shopB].ID {
		t.Errorf("both clones have id %s, want one per Pi", got[shopA].ID)
	}
	s.browseBoth("_possync._tcp")
}
