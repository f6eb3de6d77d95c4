package discovery

import (
	"net"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

func testServices(host, id string) []service {
	return []service{
		{Instance: "Bar counter", Type: ServiceType, Port: 8079, Host: host, Text: []string{"version=dev", "id=" + id}},
		{Instance: "Bar counter", Type: HTTPType, Port: 8079, Host: host, Text: []string{"path=/"}},
	}
}

func TestInstanceConflict(t *testing.T) {
	ours := testServices("possync.local.", "aaaaaaaaaaaaaaaa")
	answer := func(rrs ...dns.RR) *dns.Msg {
		m := new(dns.Msg)
		m.Response = true
		m.Answer = rrs
		return m
	}
	same := ours[0].records(serviceTTL, true)
	other := testServices("possync-bbbbbb.local.", "bbbbbbbbbbbbbbbb")
	otherPOS := other[0].records(serviceTTL, true)
	goodbye := other[0].records(0, true)
	elsewhere := testServices("x.local.", "cccccccccccccccc")
	elsewhere[0].Instance = "Kitchen"
	tests := []struct {
		name string
		msg  *dns.Msg
		want bool
	}{
		{"our own records (shared, not conflicting)", answer(same...), false},
		{"same name, other SRV and TXT", answer(otherPOS...), true},
		{"same name, other TXT only", answer(same[1], otherPOS[2]), true},
		{"same name, other _http._tcp SRV", answer(other[1].records(serviceTTL, true)[1]), true},
		{"goodbye (TTL 0)", answer(goodbye...), false},
		{"other instance", answer(elsewhere[0].records(serviceTTL, true)...), false},
		{"PTR only", answer(otherPOS[0]), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, got := instanceConflict(tt.msg, ours); got != tt.want {
				t.Errorf("instanceConflict = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestProbeVerdictPerDevice: two boxes probing the same host and instance
// names, where the per-name RFC 6762 8.2 tie-break gives each box one name,
// must not both defer: the first tie-break against a device decides the
// round, so exactly one of them loses.
func TestProbeVerdictPerDevice(t *testing.T) {
	host := "possync.local."
	boxA := Interface{Name: "eth0", Index: 2, Flags: net.FlagUp, Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.1")}}
	boxB := Interface{Name: "eth0", Index: 2, Flags: net.FlagUp, Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.2")}}
	// B's address wins the host tie-break, A's id wins the instance one.
	svcA, svcB := testServices(host, "ffffffffffffffff"), testServices(host, "0000000000000000")
	adv := &Advertiser{}
	names := adv.nameSet(host, "Bar counter")
	proposeA, proposeB := adv.proposals(host, svcA), adv.proposals(host, svcB)
	probes := func(propose func(Interface) []dns.RR, ifc Interface) []packet {
		var out []packet
		for _, n := range names {
			out = append(out, packet{msg: probeQuery([]string{n}, recordsNamed(propose(ifc), n)), ifIndex: 2})
		}
		return out
	}
	// lost reports whether the box with ours/propose defers after hearing
	// the other box's probes, in the order they are sent.
	lost := func(ifc Interface, propose func(Interface) []dns.RR, theirs []packet, from string) bool {
		verdicts, owners, any := map[netip.Addr]bool{}, map[string]owner{}, false
		for _, p := range theirs {
			p.from = netip.MustParseAddr(from)
			l, _ := adv.evalProbeReply(p, []Interface{ifc}, names, propose, owners, verdicts)
			any = any || l
		}
		return any
	}
	lostA := lost(boxA, proposeA, probes(proposeB, boxB), "10.0.0.2")
	lostB := lost(boxB, proposeB, probes(proposeA, boxA), "10.0.0.1")
	if lostA == lostB {
		t.Errorf("box A lost = %v, box B lost = %v: want exactly one box to defer", lostA, lostB)
	}
	if !lostA {
		t.Errorf("box A won, want B (the host name, probed first, decides)")
	}
}
