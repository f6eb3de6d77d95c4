package discovery

import (
	"net"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
)

func query(name string, qtype uint16, qu bool) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = false
	if qu {
		m.Question[0].Qclass |= cacheFlush
	}
	return m
}

// rrs renders records as "NAME TYPE ADDR ttl=N flush=B" for comparisons.
func rrs(list []dns.RR) []string {
	out := []string{}
	for _, rr := range list {
		h := rr.Header()
		var data string
		switch rr := rr.(type) {
		case *dns.A:
			data = rr.A.String()
		case *dns.AAAA:
			data = rr.AAAA.String()
		case *dns.NSEC:
			data = "NSEC"
			for _, t := range rr.TypeBitMap {
				data += " " + dns.TypeToString[t]
			}
		default:
			data = dns.TypeToString[h.Rrtype]
		}
		flush := "flush"
		if h.Class&cacheFlush == 0 {
			flush = "shared"
		}
		out = append(out, h.Name+" "+data+" "+flush+" ttl="+strconv.Itoa(int(h.Ttl)))
	}
	return out
}

func TestAnswerHost(t *testing.T) {
	const host = "possync.local."
	both := Interface{Name: "eth0", Index: 2, Flags: ethFlag, Addrs: addrs("192.168.1.5", "fe80::1")}
	only4 := Interface{Name: "eth0", Index: 2, Flags: ethFlag, Addrs: addrs("192.168.1.5")}
	known := query(host, dns.TypeA, false)
	known.Answer = hostRecords(host, addrs("192.168.1.5"), nil, hostTTL, true)
	stale := query(host, dns.TypeA, false)
	stale.Answer = hostRecords(host, addrs("192.168.1.5"), nil, 30, true)
	response := query(host, dns.TypeA, false)
	response.Response = true

	tests := []struct {
		name        string
		q           *dns.Msg
		ifc         Interface
		legacy      bool
		wantAnswer  []string
		wantExtra   []string
		wantUnicast bool
	}{
		{
			name: "A", q: query(host, dns.TypeA, false), ifc: both,
			wantAnswer: []string{"possync.local. 192.168.1.5 flush ttl=120"},
			wantExtra:  []string{"possync.local. fe80::1 flush ttl=120"},
		},
		{
			name: "AAAA, case-insensitive", q: query("PosSync.Local.", dns.TypeAAAA, false), ifc: both,
			wantAnswer: []string{"possync.local. fe80::1 flush ttl=120"},
			wantExtra:  []string{"possync.local. 192.168.1.5 flush ttl=120"},
		},
		{
			name: "ANY", q: query(host, dns.TypeANY, false), ifc: both,
			wantAnswer: []string{"possync.local. 192.168.1.5 flush ttl=120", "possync.local. fe80::1 flush ttl=120"},
			wantExtra:  []string{},
		},
		{
			name: "AAAA without IPv6: nothing, NSEC would be the only answer", q: query(host, dns.TypeAAAA, false), ifc: only4,
			wantAnswer: []string{"possync.local. 192.168.1.5 flush ttl=120"}[:0],
		},
		{
			name: "A with only IPv4 says there is no AAAA", q: query(host, dns.TypeA, false), ifc: only4,
			wantAnswer: []string{"possync.local. 192.168.1.5 flush ttl=120"},
			wantExtra:  []string{"possync.local. NSEC A flush ttl=120"},
		},
		{
			name: "QU bit asks for unicast", q: query(host, dns.TypeA, true), ifc: only4, wantUnicast: true,
			wantAnswer: []string{"possync.local. 192.168.1.5 flush ttl=120"},
			wantExtra:  []string{"possync.local. NSEC A flush ttl=120"},
		},
		{
			name: "legacy unicast: short TTL, no flush bit", q: query(host, dns.TypeA, false), ifc: only4, legacy: true, wantUnicast: true,
			wantAnswer: []string{"possync.local. 192.168.1.5 shared ttl=10"},
			wantExtra:  []string{"possync.local. NSEC A shared ttl=10"},
		},
		{name: "known answer suppressed", q: known, ifc: only4},
		{
			name: "stale known answer not suppressed", q: stale, ifc: only4,
			wantAnswer: []string{"possync.local. 192.168.1.5 flush ttl=120"},
			wantExtra:  []string{"possync.local. NSEC A flush ttl=120"},
		},
		{name: "other name", q: query("other.local.", dns.TypeA, false), ifc: both},
		{name: "response", q: response, ifc: both},
		{name: "no address", q: query(host, dns.TypeA, false), ifc: Interface{Name: "eth0", Flags: ethFlag}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reply, unicast := answerHost(tt.q, host, tt.ifc, tt.legacy)
			if len(tt.wantAnswer) == 0 {
				if reply != nil {
					t.Fatalf("answerHost = %v, want no reply", reply)
				}
				return
			}
			if reply == nil {
				t.Fatal("answerHost = nil, want a reply")
			}
			if unicast != tt.wantUnicast {
				t.Errorf("unicast = %v, want %v", unicast, tt.wantUnicast)
			}
			if diff := cmp.Diff(tt.wantAnswer, rrs(reply.Answer)); diff != "" {
				t.Errorf("answers (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantExtra, rrs(reply.Extra)); diff != "" {
				t.Errorf("additional (-want +got):\n%s", diff)
			}
			if tt.legacy && (reply.Id != tt.q.Id || len(reply.Question) != 1) {
				t.Errorf("legacy reply id %d questions %d, want id %d and the question", reply.Id, len(reply.Question), tt.q.Id)
			}
			if !tt.legacy && len(reply.Question) != 0 {
				t.Errorf("mDNS reply carries %d questions, want none (RFC 6762 6)", len(reply.Question))
			}
			if _, err := reply.Pack(); err != nil {
				t.Errorf("reply does not pack: %v", err)
			}
		})
	}
}

func TestAnnouncement(t *testing.T) {
	svc := service{Instance: "Shop 1", Type: ServiceType, Port: 8079, Host: "possync.local.", Text: []string{"path=/"}}
	ifc := Interface{Name: "eth0", Index: 2, Flags: ethFlag, Addrs: addrs("192.168.1.5")}
	m := announcement([]service{svc}, "possync.local.", ifc, serviceTTL)
	want := []string{
		"_possync._tcp.local. PTR shared ttl=3200",
		`Shop\ 1._possync._tcp.local. SRV flush ttl=3200`,
		`Shop\ 1._possync._tcp.local. TXT flush ttl=3200`,
		"_services._dns-sd._udp.local. PTR shared ttl=3200",
		"possync.local. 192.168.1.5 flush ttl=120",
	}
	if diff := cmp.Diff(want, rrs(m.Answer)); diff != "" {
		t.Errorf("announcement (-want +got):\n%s", diff)
	}
	bye := announcement([]service{svc}, "possync.local.", ifc, 0)
	for _, rr := range bye.Answer {
		if rr.Header().Ttl != 0 {
			t.Errorf("goodbye record %v has TTL %d, want 0", rr, rr.Header().Ttl)
		}
	}
	if len(announcement([]service{svc}, "", ifc, serviceTTL).Answer) != 4 {
		t.Error("without a host, the announcement must carry no address records")
	}
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	var back dns.Msg
	if err := back.Unpack(b); err != nil {
		t.Fatal(err)
	}
	srv := back.Answer[1].(*dns.SRV)
	if srv.Port != 8079 || srv.Target != "possync.local." || unescape(srv.Hdr.Name) != "Shop 1._possync._tcp.local." {
		t.Errorf("SRV after pack = %v", srv)
	}
}

func TestProbeWins(t *testing.T) {
	a := func(ip string) dns.RR {
		return &dns.A{Hdr: dns.RR_Header{Name: "possync.local.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 120}, A: net.ParseIP(ip)}
	}
	aaaa := &dns.AAAA{Hdr: dns.RR_Header{Name: "possync.local.", Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: 120}, AAAA: net.ParseIP("fe80::1")}
	tests := []struct {
		name         string
		ours, theirs []dns.RR
		want         bool
	}{
		{"higher address wins", []dns.RR{a("10.0.0.9")}, []dns.RR{a("10.0.0.10")}, false},
		{"bytes not strings", []dns.RR{a("10.0.0.10")}, []dns.RR{a("10.0.0.9")}, true},
		{"higher type wins", []dns.RR{aaaa}, []dns.RR{a("10.0.0.1")}, true},
		{"sorted before comparing", []dns.RR{aaaa, a("10.0.0.1")}, []dns.RR{a("10.0.0.2")}, false},
		{"more records win a tie", []dns.RR{a("10.0.0.1"), aaaa}, []dns.RR{a("10.0.0.1")}, true},
		{"identical (our echo) wins", []dns.RR{a("10.0.0.1")}, []dns.RR{a("10.0.0.1")}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := probeWins(tt.ours, tt.theirs); got != tt.want {
				t.Errorf("probeWins(%v, %v) = %v, want %v", tt.ours, tt.theirs, got, tt.want)
			}
		})
	}
}
