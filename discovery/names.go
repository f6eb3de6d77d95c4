package discovery

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// owner says who answered a probe for a name.
type owner int

const (
	ownerNone   owner = iota // nobody: the name is ours to claim
	ownerLocal               // a responder on this machine (the OS's avahi)
	ownerRemote              // another device on the network
)

// Probe timing, RFC 6762 8.1.
const (
	probeCount    = 3
	probeInterval = 250 * time.Millisecond
	probeRestarts = 3 // simultaneous-probe losses before giving a name up
)

// claimNames probes the host name and the instance names before anything is
// announced, and settles what possync will use:
//   - host name free: possync answers A/AAAA for it;
//   - answered from this machine: the OS responder (avahi) owns it, possync
//     points its SRV records at it and does not answer;
//   - answered by another device: a clear warning, and the fallback
//     <host>-<short id> is claimed instead (don't fight over a name).
//
// Instance names answered by anyone move to <instance>-<short id> likewise.
func (a *Advertiser) claimNames(ctx context.Context) error {
	a.mu.Lock()
	host, inst := a.host, a.instance
	a.mu.Unlock()
	owners, err := a.probeNames(ctx, a.nameSet(host, inst), a.proposals(host, a.services(host, inst)))
	if err != nil {
		return err
	}
	hostOwner := owners[host]
	instTaken := a.instanceTaken(owners, inst)
	if hostOwner == ownerRemote || instTaken {
		nextHost, nextInst := host, inst
		if hostOwner == ownerRemote {
			nextHost = hostFQDN(fallbackName(trimLocal(host), a.opts.ID))
			a.log.Warn("another device already answers for the host name; possync will not answer for it",
				"host", host, "using", nextHost, "fix", "give each box its own discovery.hostname")
		}
		if instTaken {
			nextInst = fallbackName(inst, a.opts.ID)
			a.log.Warn("another service already uses the instance name", "instance", inst, "using", nextInst,
				"fix", "give each box its own discovery.instance")
		}
		owners, err = a.probeNames(ctx, a.nameSet(nextHost, nextInst), a.proposals(nextHost, a.services(nextHost, nextInst)))
		if err != nil {
			return err
		}
		if hostOwner == ownerRemote {
			hostOwner = owners[nextHost]
			if hostOwner == ownerRemote {
				a.log.Warn("fallback host name is taken too; possync will not answer for it", "host", nextHost)
			}
		}
		if a.instanceTaken(owners, nextInst) {
			a.log.Warn("fallback instance name is taken too; announcing it anyway", "instance", nextInst)
		}
		host, inst = nextHost, nextInst
	}
	if hostOwner == ownerLocal {
		a.log.Info("the OS mDNS responder answers for the host name; possync leaves it to it", "host", host)
	}
	a.mu.Lock()
	a.host, a.instance, a.ownHost = host, inst, hostOwner == ownerNone
	a.mu.Unlock()
	return nil
}

// nameSet is the host FQDN followed by the instance FQDNs of both services.
func (a *Advertiser) nameSet(host, inst string) []string {
	names := []string{host}
	for _, s := range a.services(host, inst) {
		names = append(names, s.instanceName())
	}
	return names
}

func (a *Advertiser) services(host, inst string) []service {
	return []service{
		{Instance: inst, Type: ServiceType, Port: a.opts.Port, Host: host, Text: a.txt},
		{Instance: inst, Type: HTTPType, Port: a.opts.Port, Host: host, Text: a.http},
	}
}

func (a *Advertiser) instanceTaken(owners map[string]owner, inst string) bool {
	for _, s := range a.services("", inst) {
		if owners[s.instanceName()] != ownerNone {
			return true
		}
	}
	return false
}

// proposals returns, per interface, the records a probe claims: the host's
// addresses on that interface and the services' SRV records.
func (a *Advertiser) proposals(host string, svcs []service) func(Interface) []dns.RR {
	return func(ifc Interface) []dns.RR {
		v4, v6 := hostAddrs(ifc)
		rrs := hostRecords(host, v4, v6, hostTTL, false)
		for _, s := range svcs {
			rrs = append(rrs, s.records(serviceTTL, false)[1]) // the SRV record
		}
		return rrs
	}
}

// probeNames sends three probes for names on every interface, 250 ms apart,
// and reports who answered for each name. A simultaneous probe from another
// device that wins the RFC 6762 8.2 tie-break restarts probing after a
// second; after three such losses the names count as taken.
func (a *Advertiser) probeNames(ctx context.Context, names []string, propose func(Interface) []dns.RR) (map[string]owner, error) {
	ch := make(chan packet, 64)
	a.mu.Lock()
	a.probes = ch
	ifcs := slices.Clone(a.ifcs)
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		a.probes = nil
		a.mu.Unlock()
	}()

	owners := make(map[string]owner, len(names))
	wait := time.Duration(rand.Int64N(int64(probeInterval)))
	for restarts := 0; ; restarts++ {
		if err := sleep(ctx, wait); err != nil {
			return nil, err
		}
		lost, err := a.probeRound(ctx, ch, ifcs, names, propose, owners)
		if err != nil {
			return nil, err
		}
		if !lost {
			return owners, nil
		}
		if restarts == probeRestarts {
			for _, n := range names {
				owners[n] = max(owners[n], ownerRemote)
			}
			return owners, nil
		}
		a.log.Debug("lost a simultaneous probe, probing again in 1s", "names", names)
		wait = time.Second
	}
}

// probeRound is one series of probes. It fills owners and reports whether
// another device's simultaneous probe beat ours.
func (a *Advertiser) probeRound(ctx context.Context, ch <-chan packet, ifcs []Interface, names []string,
	propose func(Interface) []dns.RR, owners map[string]owner) (lost bool, err error) {
	for i := 0; i < probeCount; i++ {
		for _, ifc := range ifcs {
			// One name per probe: a probe carrying a service's SRV next to
			// the host's A records looks like a full answer to zeroconf's
			// resolver, which reads authority sections too and would report
			// the service without its TXT.
			proposed := propose(ifc)
			for _, n := range names {
				q := probeQuery([]string{n}, recordsNamed(proposed, n))
				if err := a.conn.multicast(q, ifc); err != nil {
					a.log.Debug("send probe", "interface", ifc.Name, "err", err)
				}
			}
		}
		deadline := time.NewTimer(probeInterval)
	collect:
		for {
			select {
			case <-ctx.Done():
				deadline.Stop()
				return false, ctx.Err()
			case <-deadline.C:
				break collect
			case p := <-ch:
				if a.evalProbeReply(p, ifcs, names, propose, owners) {
					lost = true
				}
			}
		}
		if lost {
			return true, nil
		}
	}
	return false, nil
}

// evalProbeReply records who answers for which name in owners, and reports
// whether p is a simultaneous probe from another device that beats ours.
func (a *Advertiser) evalProbeReply(p packet, ifcs []Interface, names []string,
	propose func(Interface) []dns.RR, owners map[string]owner) bool {
	local := a.isLocal(p.from)
	if p.msg.Response {
		for _, rr := range slices.Concat(p.msg.Answer, p.msg.Extra) {
			h := rr.Header()
			if h.Ttl == 0 {
				continue
			}
			for _, n := range names {
				if strings.EqualFold(h.Name, n) {
					o := ownerRemote
					if local {
						o = ownerLocal
					}
					owners[n] = max(owners[n], o)
				}
			}
		}
		return false
	}
	if local || len(p.msg.Ns) == 0 {
		return false
	}
	i := slices.IndexFunc(ifcs, func(ifc Interface) bool { return ifc.Index == p.ifIndex })
	if i < 0 {
		return false
	}
	ours := propose(ifcs[i])
	for _, n := range names {
		theirs := recordsNamed(p.msg.Ns, n)
		if len(theirs) > 0 && !probeWins(recordsNamed(ours, n), theirs) {
			return true
		}
	}
	return false
}

func recordsNamed(rrs []dns.RR, name string) []dns.RR {
	var out []dns.RR
	for _, rr := range rrs {
		if strings.EqualFold(rr.Header().Name, name) {
			out = append(out, rr)
		}
	}
	return out
}

// handle is called for every packet on possync's sockets: it feeds a
// running probe, answers host-name queries when possync owns the name, and
// notices another device claiming that name.
func (a *Advertiser) handle(p packet) {
	a.mu.Lock()
	probes, own, host := a.probes, a.ownHost, a.host
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
	if i < 0 || !own {
		return
	}
	if p.msg.Response {
		if other, ok := a.claim(p.msg, host); ok && !local {
			a.mu.Lock()
			if a.ownHost && a.host == host {
				a.ownHost = false
				select {
				case a.conflicts <- other:
				default:
				}
			}
			a.mu.Unlock()
		}
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

// trimLocal turns "possync.local." back into "possync".
func trimLocal(fqdn string) string { return strings.TrimSuffix(fqdn, ".local.") }

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
