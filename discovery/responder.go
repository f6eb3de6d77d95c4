package discovery

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// handle is called for every packet on possync's sockets: it feeds a
// running probe, answers host-name queries when possync owns the name,
// defends the instance names against probes, and notices another device
// claiming a name in use (RFC 6762 section 9).
func (a *Advertiser) handle(p packet) {
	if p.own {
		return
	}
	a.mu.Lock()
	probes, own, byOS, claimed, host := a.probes, a.ownHost, a.hostByOS, a.claimed, a.host
	svcs := a.servicesLocked()
	i := slices.IndexFunc(a.ifcs, func(ifc Interface) bool { return ifc.Index == p.ifIndex })
	var ifc Interface
	if i >= 0 {
		ifc = a.ifcs[i]
	}
	local := a.isLocalLocked(p.from)
	a.mu.Unlock()

	if probes != nil {
		select {
		case probes <- p:
		default:
		}
	}
	if i < 0 || !claimed {
		return
	}
	if p.msg.Response {
		if local {
			return
		}
		if other, ok := a.claim(p.msg, host); ok && (own || byOS) {
			a.conflict("another device claims the host name", "host", host, "other", other)
		}
		if name, ok := instanceConflict(p.msg, svcs); ok {
			a.conflict("another device announces the instance name", "instance", name, "other", p.from)
		}
		return
	}
	if len(p.msg.Ns) > 0 {
		a.defendInstance(p, ifc, svcs)
	}
	if !own {
		return
	}
	legacy := p.src.Port != mdnsPort
	reply, unicast := answerHost(p.msg, host, ifc, legacy)
	if reply == nil {
		return
	}
	if len(p.msg.Ns) > 0 && !legacy {
		unicast = false // defend against a probe in the open
	}
	var err error
	if unicast {
		err = a.conn.unicast(reply, p.src)
	} else {
		err = a.conn.reply(reply, ifc, p.src)
	}
	if err != nil {
		a.log.Debug("answer host query", "from", p.src, "err", err)
	}
}

// conflict stops answering for the names and asks Run to probe them again
// (RFC 6762 section 9: a conflicting record puts the name back into the
// probing state; the tie-break or the other device's answers then decide
// who keeps it).
func (a *Advertiser) conflict(msg string, args ...any) {
	a.mu.Lock()
	if !a.claimed {
		a.mu.Unlock()
		return
	}
	a.claimed, a.ownHost = false, false
	a.mu.Unlock()
	a.log.Warn(msg+"; possync probes its names again", args...)
	select {
	case a.recheck <- "conflict":
	default:
	}
}

// defendInstance answers a probe (a query with an authority section) for
// one of our instance names with our SRV and TXT records, in the open: the
// prober then sees the name taken (RFC 6762 8.1). zeroconf answers no query
// that carries an authority section, so without this a second box would
// never find the name in use.
func (a *Advertiser) defendInstance(p packet, ifc Interface, svcs []service) {
	reply := new(dns.Msg)
	reply.Response, reply.Authoritative, reply.Compress = true, true, true
	for _, q := range p.msg.Question {
		if q.Qtype != dns.TypeANY && q.Qtype != dns.TypeSRV && q.Qtype != dns.TypeTXT {
			continue
		}
		for _, s := range svcs {
			if strings.EqualFold(q.Name, s.instanceName()) {
				reply.Answer = append(reply.Answer, s.records(serviceTTL, true)[1:3]...)
			}
		}
	}
	if len(reply.Answer) == 0 {
		return
	}
	if err := a.conn.reply(reply, ifc, p.src); err != nil {
		a.log.Debug("defend instance name", "from", p.src, "err", err)
	}
}

// instanceConflict finds, in a response from another device, a live SRV or
// TXT record for one of our instance names whose data differs from ours:
// another service announcing the same name (RFC 6762 section 9). Identical
// records are shared, not conflicting.
func instanceConflict(m *dns.Msg, svcs []service) (string, bool) {
	for _, rr := range slices.Concat(m.Answer, m.Extra) {
		h := rr.Header()
		if h.Ttl == 0 || h.Rrtype != dns.TypeSRV && h.Rrtype != dns.TypeTXT {
			continue
		}
		for _, s := range svcs {
			if !strings.EqualFold(h.Name, s.instanceName()) {
				continue
			}
			if !slices.ContainsFunc(s.records(serviceTTL, true)[1:3], func(ours dns.RR) bool { return sameRecord(ours, rr) }) {
				return s.Instance, true
			}
		}
	}
	return "", false
}

// claim finds an address record for host, alive, whose address is not one of
// this machine's: another device claiming the name.
func (a *Advertiser) claim(m *dns.Msg, host string) (netip.Addr, bool) {
	for _, rr := range slices.Concat(m.Answer, m.Extra) {
		h := rr.Header()
		if h.Ttl == 0 || !strings.EqualFold(h.Name, host) {
			continue
		}
		var ip []byte
		switch rr := rr.(type) {
		case *dns.A:
			ip = rr.A
		case *dns.AAAA:
			ip = rr.AAAA
		default:
			continue
		}
		if addr, ok := netip.AddrFromSlice(ip); ok && !a.isLocal(addr.Unmap()) {
			return addr.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

func (a *Advertiser) isLocal(addr netip.Addr) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.isLocalLocked(addr)
}

func (a *Advertiser) isLocalLocked(addr netip.Addr) bool {
	addr = addr.WithZone("")
	if addr.IsLoopback() {
		return true
	}
	for _, ifc := range a.all {
		if slices.Contains(ifc.Addrs, addr) {
			return true
		}
	}
	return false
}
