package discovery

import (
	"bytes"
	"cmp"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// Record TTLs, as zeroconf uses them: service records live long, address
// records 120 s (RFC 6762 section 10).
const (
	serviceTTL = 3200
	hostTTL    = 120
	legacyTTL  = 10 // cap for answers to legacy (non-5353) unicast queries
)

// cacheFlush is the mDNS cache-flush bit of the rrclass (RFC 6762 10.2).
const cacheFlush = 1 << 15

// service is one DNS-SD registration as announced on the wire.
type service struct {
	Instance string   // raw instance name (one label, may hold spaces)
	Type     string   // "_possync._tcp"
	Port     int      // TCP port
	Host     string   // target host FQDN, "possync.local."
	Text     []string // raw TXT strings
}

func (s service) typeName() string     { return s.Type + ".local." }
func (s service) instanceName() string { return escapeLabel(s.Instance) + "." + s.typeName() }

// hostFQDN turns a host label into its .local FQDN.
func hostFQDN(label string) string { return label + ".local." }

// records returns the service's PTR, SRV, TXT and service-enumeration PTR.
// Unique records (SRV, TXT) carry the cache-flush bit when flush is set.
func (s service) records(ttl uint32, flush bool) []dns.RR {
	class := uint16(dns.ClassINET)
	if flush {
		class |= cacheFlush
	}
	txt := escapeTXT(s.Text)
	if len(txt) == 0 {
		txt = []string{""} // RFC 6763 6.1: never an empty TXT record
	}
	return []dns.RR{
		&dns.PTR{Hdr: dns.RR_Header{Name: s.typeName(), Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: ttl}, Ptr: s.instanceName()},
		&dns.SRV{Hdr: dns.RR_Header{Name: s.instanceName(), Rrtype: dns.TypeSRV, Class: class, Ttl: ttl}, Port: uint16(s.Port), Target: s.Host},
		&dns.TXT{Hdr: dns.RR_Header{Name: s.instanceName(), Rrtype: dns.TypeTXT, Class: class, Ttl: ttl}, Txt: txt},
		&dns.PTR{Hdr: dns.RR_Header{Name: "_services._dns-sd._udp.local.", Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: ttl}, Ptr: s.typeName()},
	}
}

// hostRecords returns A and AAAA records for name.
func hostRecords(name string, v4, v6 []netip.Addr, ttl uint32, flush bool) []dns.RR {
	class := uint16(dns.ClassINET)
	if flush {
		class |= cacheFlush
	}
	out := make([]dns.RR, 0, len(v4)+len(v6))
	for _, a := range v4 {
		out = append(out, &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: class, Ttl: ttl}, A: a.AsSlice()})
	}
	for _, a := range v6 {
		out = append(out, &dns.AAAA{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeAAAA, Class: class, Ttl: ttl}, AAAA: a.AsSlice()})
	}
	return out
}

// announcement builds the unsolicited response sent on one interface: every
// service's records and, when host is not empty, the host's addresses on
// that interface. With ttl 0 it is a goodbye.
func announcement(svcs []service, host string, ifc Interface, ttl uint32) *dns.Msg {
	m := new(dns.Msg)
	m.Response = true
	m.Authoritative = true
	m.Compress = true
	for _, s := range svcs {
		m.Answer = append(m.Answer, s.records(ttl, true)...)
	}
	if host != "" {
		v4, v6 := hostAddrs(ifc)
		hTTL := uint32(hostTTL)
		if ttl == 0 {
			hTTL = 0
		}
		m.Answer = append(m.Answer, hostRecords(host, v4, v6, hTTL, true)...)
	}
	return m
}

// probeQuery builds an RFC 6762 8.1 probe: an ANY question per name, with
// the records we intend to claim in the authority section.
func probeQuery(names []string, proposed []dns.RR) *dns.Msg {
	m := new(dns.Msg)
	m.RecursionDesired = false
	for _, n := range names {
		m.Question = append(m.Question, dns.Question{Name: n, Qtype: dns.TypeANY, Qclass: dns.ClassINET})
	}
	m.Ns = proposed
	return m
}

// answerHost builds the reply to a query for the host name: A and AAAA
// records with the addresses of the interface the query came in on. It
// returns nil when the query asks nothing about name or every answer is
// already known to the querier. legacy is set for queries from a port other
// than 5353 (RFC 6762 6.7): they get a unicast DNS-style reply.
func answerHost(q *dns.Msg, name string, ifc Interface, legacy bool) (reply *dns.Msg, unicast bool) {
	if q.Response || q.Opcode != dns.OpcodeQuery {
		return nil, false
	}
	v4, v6 := hostAddrs(ifc)
	wantA, wantAAAA := false, false
	for _, qu := range q.Question {
		if !strings.EqualFold(qu.Name, name) || qu.Qclass&^cacheFlush != dns.ClassINET && qu.Qclass&^cacheFlush != dns.ClassANY {
			continue
		}
		switch qu.Qtype {
		case dns.TypeA:
			wantA = true
		case dns.TypeAAAA:
			wantAAAA = true
		case dns.TypeANY:
			wantA, wantAAAA = true, true
		default:
			continue
		}
		if qu.Qclass&cacheFlush != 0 { // the QU bit in a question
			unicast = true
		}
	}
	if !wantA && !wantAAAA || len(v4)+len(v6) == 0 {
		return nil, false
	}
	ttl, flush := uint32(hostTTL), true
	if legacy {
		ttl, flush, unicast = legacyTTL, false, true
	}
	all4 := hostRecords(name, v4, nil, ttl, flush)
	all6 := hostRecords(name, nil, v6, ttl, flush)
	reply = new(dns.Msg)
	reply.Response = true
	reply.Authoritative = true
	reply.Compress = true
	if legacy {
		reply.Id = q.Id
		reply.Question = q.Question
	}
	if wantA {
		reply.Answer = append(reply.Answer, all4...)
	} else {
		reply.Extra = append(reply.Extra, all4...)
	}
	if wantAAAA {
		reply.Answer = append(reply.Answer, all6...)
	} else {
		reply.Extra = append(reply.Extra, all6...)
	}
	reply.Answer = suppressKnown(reply.Answer, q.Answer)
	if len(reply.Answer) == 0 {
		return nil, false
	}
	if len(v4) == 0 || len(v6) == 0 {
		// Say which types exist, so a querier asking for the missing one
		// stops waiting (RFC 6762 6.1).
		types := []uint16{dns.TypeA}
		if len(v4) == 0 {
			types = []uint16{dns.TypeAAAA}
		}
		reply.Extra = append(reply.Extra, &dns.NSEC{
			Hdr:        dns.RR_Header{Name: name, Rrtype: dns.TypeNSEC, Class: dns.ClassINET | classFlush(flush), Ttl: ttl},
			NextDomain: name, TypeBitMap: types,
		})
	}
	return reply, unicast
}

func classFlush(flush bool) uint16 {
	if flush {
		return cacheFlush
	}
	return 0
}

// suppressKnown drops answers the querier listed as known with at least half
// their TTL left (RFC 6762 7.1).
func suppressKnown(answers, known []dns.RR) []dns.RR {
	out := answers[:0]
next:
	for _, a := range answers {
		for _, k := range known {
			if k.Header().Ttl >= a.Header().Ttl/2 && sameRecord(a, k) {
				continue next
			}
		}
		out = append(out, a)
	}
	return out
}

// sameRecord compares name, type, class (without the cache-flush bit) and
// rdata.
func sameRecord(a, b dns.RR) bool {
	ha, hb := a.Header(), b.Header()
	return strings.EqualFold(ha.Name, hb.Name) && ha.Rrtype == hb.Rrtype &&
		ha.Class&^cacheFlush == hb.Class&^cacheFlush && bytes.Equal(rdata(a), rdata(b))
}

// rdata returns the wire form of a record's data, for comparisons.
func rdata(rr dns.RR) []byte {
	buf := make([]byte, dns.Len(rr)+16)
	end, err := dns.PackRR(rr, buf, 0, nil, false)
	if err != nil {
		return nil
	}
	nameEnd, err := dns.PackDomainName(rr.Header().Name, make([]byte, 256), 0, nil, false)
	if err != nil || nameEnd+10 > end {
		return nil
	}
	return buf[nameEnd+10 : end]
}

// probeWins applies the RFC 6762 8.2 tie-break between two simultaneous
// probes for the same name: records are compared in order by class, type
// and rdata, and the lexicographically later set wins. Equal sets (our own
// probe echoed back) count as a win.
func probeWins(ours, theirs []dns.RR) bool {
	ours, theirs = sortedRecords(ours), sortedRecords(theirs)
	for i := 0; i < len(ours) && i < len(theirs); i++ {
		a, b := ours[i].Header(), theirs[i].Header()
		if c := int(a.Class&^cacheFlush) - int(b.Class&^cacheFlush); c != 0 {
			return c > 0
		}
		if c := int(a.Rrtype) - int(b.Rrtype); c != 0 {
			return c > 0
		}
		if c := bytes.Compare(rdata(ours[i]), rdata(theirs[i])); c != 0 {
			return c > 0
		}
	}
	return len(ours) >= len(theirs)
}

func sortedRecords(rrs []dns.RR) []dns.RR {
	out := slices.Clone(rrs)
	slices.SortStableFunc(out, func(x, y dns.RR) int {
		a, b := x.Header(), y.Header()
		if c := cmp.Compare(a.Class&^cacheFlush, b.Class&^cacheFlush); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Rrtype, b.Rrtype); c != 0 {
			return c
		}
		return bytes.Compare(rdata(x), rdata(y))
	})
	return out
}
