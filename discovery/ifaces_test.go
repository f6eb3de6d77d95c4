package discovery

import (
	"net"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	upRun   = net.FlagUp | net.FlagRunning
	ethFlag = upRun | net.FlagBroadcast | net.FlagMulticast
)

var (
	lo    = Interface{Name: "lo", Index: 1, Flags: upRun | net.FlagLoopback, Addrs: addrs("127.0.0.1", "::1")}
	eth0  = Interface{Name: "eth0", Index: 2, Flags: ethFlag, Addrs: addrs("192.168.1.5", "fe80::1")}
	wlan0 = Interface{Name: "wlan0", Index: 3, Flags: ethFlag, Addrs: addrs("192.168.2.7")}
	down  = Interface{Name: "eth1", Index: 4, Flags: net.FlagBroadcast | net.FlagMulticast, Addrs: addrs("10.0.0.1")}
	nocar = Interface{Name: "eth2", Index: 5, Flags: net.FlagUp | net.FlagMulticast, Addrs: addrs("10.0.1.1")}
	tun   = Interface{Name: "tun0", Index: 6, Flags: upRun | net.FlagPointToPoint | net.FlagMulticast, Addrs: addrs("100.64.0.1")}
	nomc  = Interface{Name: "dummy0", Index: 7, Flags: upRun | net.FlagBroadcast, Addrs: addrs("10.0.2.1")}
	noip  = Interface{Name: "eth3", Index: 8, Flags: ethFlag}
)

var addrCmp = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

func names(ifcs []Interface) []string {
	out := []string{}
	for _, i := range ifcs {
		out = append(out, i.Name)
	}
	return out
}

func TestSelectInterfaces(t *testing.T) {
	all := []Interface{lo, eth0, wlan0, down, nocar, tun, nomc, noip}
	tests := []struct {
		name        string
		all         []Interface
		configured  []string
		want        []string
		wantSkipped []string
	}{
		{name: "default: up, running, multicast, with an address", all: all, want: []string{"eth0", "wlan0"}},
		{name: "default without network falls back to loopback", all: []Interface{lo, down, noip}, want: []string{"lo"}},
		{name: "nothing at all", all: []Interface{down}, want: []string{}},
		{name: "loopback down is no fallback", all: []Interface{{Name: "lo", Index: 1, Flags: net.FlagLoopback}}, want: []string{}},
		{name: "configured, in the given order", all: all, configured: []string{"wlan0", "eth0"}, want: []string{"wlan0", "eth0"}},
		{name: "configured loopback is allowed", all: all, configured: []string{"lo"}, want: []string{"lo"}},
		{name: "configured but down or missing", all: all, configured: []string{"eth1", "eth9", "eth0"}, want: []string{"eth0"}, wantSkipped: []string{"eth1", "eth9"}},
		{name: "configured twice", all: all, configured: []string{"eth0", "eth0"}, want: []string{"eth0"}},
		{name: "configured without an address yet", all: all, configured: []string{"eth3"}, want: []string{"eth3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, skipped := SelectInterfaces(tt.all, tt.configured)
			if diff := cmp.Diff(tt.want, names(got)); diff != "" {
				t.Errorf("SelectInterfaces(%v) (-want +got):\n%s", tt.configured, diff)
			}
			if diff := cmp.Diff(tt.wantSkipped, skipped); diff != "" {
				t.Errorf("SelectInterfaces(%v) skipped (-want +got):\n%s", tt.configured, diff)
			}
		})
	}
}

func TestHostAddrs(t *testing.T) {
	ifc := Interface{Name: "eth0", Flags: ethFlag, Addrs: addrs("192.168.1.5", "127.0.0.2", "2001:db8::5", "fe80::1", "::")}
	v4, v6 := hostAddrs(ifc)
	if diff := cmp.Diff(addrs("192.168.1.5"), v4, addrCmp); diff != "" {
		t.Errorf("hostAddrs v4 (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(addrs("2001:db8::5", "fe80::1"), v6, addrCmp); diff != "" {
		t.Errorf("hostAddrs v6 (-want +got):\n%s", diff)
	}
	v4, _ = hostAddrs(lo)
	if len(v4) != 1 {
		t.Errorf("hostAddrs(lo) v4 = %v, want the loopback address", v4)
	}
}

func TestChanges(t *testing.T) {
	moved := eth0
	moved.Addrs = addrs("192.168.1.6", "fe80::1")
	if !sameInterfaces([]Interface{eth0}, []Interface{moved}) || sameAddrs([]Interface{eth0}, []Interface{moved}) {
		t.Error("an address change must keep the interfaces and change the addresses")
	}
	if sameInterfaces([]Interface{eth0}, []Interface{eth0, wlan0}) {
		t.Error("a new interface must change the selection")
	}
	gone := goneAddrs([]Interface{eth0, wlan0}, []Interface{moved})
	want := map[int][]netip.Addr{2: addrs("192.168.1.5")}
	if diff := cmp.Diff(want, gone, addrCmp); diff != "" {
		t.Errorf("goneAddrs (-want +got):\n%s", diff)
	}
}

func TestLoopbackIPs(t *testing.T) {
	if got := loopbackIPs([]Interface{lo}); len(got) != 2 || got[0] != "127.0.0.1" || got[1] != "::1" {
		t.Errorf("loopbackIPs(lo) = %q, want the loopback addresses", got)
	}
	if got := loopbackIPs([]Interface{eth0}); got != nil {
		t.Errorf("loopbackIPs(eth0) = %q, want nil (addresses read per query)", got)
	}
	if got := loopbackIPs([]Interface{lo, eth0}); got != nil {
		t.Errorf("loopbackIPs(lo, eth0) = %q, want nil", got)
	}
}
