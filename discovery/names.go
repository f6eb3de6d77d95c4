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
	ownerNone       owner = iota // nobody: the name is ours to claim
	ownerLocalProbe              // a responder on this machine (avahi) still probing it
	ownerLocal                   // a responder on this machine (the OS's avahi)
	ownerRemote                  // another device on the network
)

// Probe timing, RFC 6762 8.1.
const (
	probeCount    = 3
	probeInterval = 250 * time.Millisecond
	probeRestarts = 3 // simultaneous-probe losses before giving a name up
	localWaits    = 5 // times possync waits for the OS responder to finish probing
)

// claimNames probes (RFC 6762 8.1) the host name and the instance names in
// use before anything is announced on the current links, and settles what
// possync will use:
//   - host name free: possync answers A/AAAA for it;
//   - answered (or being probed) from this machine: the OS responder
//     (avahi) owns it, possync points its SRV records at it and does not
//     answer;
//   - answered by another device: a clear warning, and the fallback
//     <host>-<short id> is claimed instead (don't fight over a name).
//
// Instance names answered by anyone move to <instance>-<short id> likewise.
// It runs at start and again on every link change and conflict (RFC 6762
// section 9), from the names in use then: a box that owns its names keeps
// them, a box that finds them taken moves on.
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
	byOS := hostOwner == ownerLocal || hostOwner == ownerLocalProbe
	if byOS {
		a.log.Info("the OS mDNS responder answers for the host name; possync leaves it to it", "host", host)
	}
	a.mu.Lock()
	a.host, a.instance, a.ownHost, a.hostByOS, a.claimed = host, inst, hostOwner == ownerNone, byOS, true
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
// addresses on that interface and the services' SRV and TXT records (the
// TXT holds the box id, so two boxes with the same name and port still
// differ in the RFC 6762 8.2 tie-break).
func (a *Advertiser) proposals(host string, svcs []service) func(Interface) []dns.RR {
	return func(ifc Interface) []dns.RR {
		v4, v6 := hostAddrs(ifc)
		rrs := hostRecords(host, v4, v6, hostTTL, false)
		for _, s := range svcs {
			rrs = append(rrs, s.records(serviceTTL, false)[1:3]...) // SRV and TXT
		}
		return rrs
	}
}

// probeNames sends three probes for names on every interface, 250 ms apart,
// and reports who answered for each name. A simultaneous probe from another
// device that wins the RFC 6762 8.2 tie-break restarts probing after a
// second; after three such losses the names count as taken. A responder on
// this machine probing one of the names (avahi, after a link change) also
// restarts probing after a second, to hear what it settled on.
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

	wait := time.Duration(rand.Int64N(int64(probeInterval)))
	for restarts, waits := 0, 0; ; {
		if err := sleep(ctx, wait); err != nil {
			return nil, err
		}
		owners := make(map[string]owner, len(names))
		lost, busy, err := a.probeRound(ctx, ch, ifcs, names, propose, owners, map[netip.Addr]bool{})
		if err != nil {
			return nil, err
		}
		switch {
		case lost && restarts == probeRestarts:
			for _, n := range names {
				owners[n] = max(owners[n], ownerRemote)
			}
			return owners, nil
		case lost:
			restarts++
			a.log.Debug("lost a simultaneous probe, probing again in 1s", "names", names)
		case busy && waits < localWaits:
			waits++
			a.log.Debug("the OS mDNS responder is probing the same name, probing again in 1s", "names", names)
		default:
			return owners, nil
		}
		wait = time.Second
	}
}

// probeRound is one series of probes. It fills owners and reports whether
// another device's simultaneous probe beat ours (lost), or a responder on
// this machine is probing one of the names too (busy). verdicts keeps, per
// probing device, the first tie-break against it (see evalProbeReply).
func (a *Advertiser) probeRound(ctx context.Context, ch <-chan packet, ifcs []Interface, names []string,
	propose func(Interface) []dns.RR, owners map[string]owner, verdicts map[netip.Addr]bool) (lost, busy bool, err error) {
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
				return false, false, ctx.Err()
			case <-deadline.C:
				break collect
			case p := <-ch:
				l, b := a.evalProbeReply(p, ifcs, names, propose, owners, verdicts)
				lost, busy = lost || l, busy || b
			}
		}
		if lost || busy {
			return lost, busy, nil
		}
	}
	return false, false, nil
}

// evalProbeReply records who answers for which name in owners. It reports
// whether p is a simultaneous probe from another device that beats ours
// (lost), or a probe for one of the names from a responder on this machine
// (busy: avahi probing the host name after a link change; the box must not
// claim the name next to it).
//
// The RFC 6762 8.2 tie-break is per name, and a box probes three (host,
// _possync._tcp and _http._tcp instance), each in its own packet: two boxes
// could each win one name and lose another, and both defer forever. So
// the first tie-break against a device decides for all names in the round
// (verdicts, by source address); both boxes probe the names in the same
// order, so both reach the same verdict.
func (a *Advertiser) evalProbeReply(p packet, ifcs []Interface, names []string,
	propose func(Interface) []dns.RR, owners map[string]owner, verdicts map[netip.Addr]bool) (lost, busy bool) {
	if p.own {
		return false, false
	}
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
		return false, false
	}
	if len(p.msg.Ns) == 0 {
		return false, false
	}
	if local {
		for _, n := range names {
			if len(recordsNamed(p.msg.Ns, n)) > 0 {
				owners[n] = max(owners[n], ownerLocalProbe)
				busy = true
			}
		}
		return false, busy
	}
	i := slices.IndexFunc(ifcs, func(ifc Interface) bool { return ifc.Index == p.ifIndex })
	if i < 0 {
		return false, false
	}
	ours := propose(ifcs[i])
	for _, n := range names {
		theirs := recordsNamed(p.msg.Ns, n)
		if len(theirs) == 0 {
			continue
		}
		win, ok := verdicts[p.from]
		if !ok {
			win = probeWins(recordsNamed(ours, n), theirs)
			verdicts[p.from] = win
		}
		return !win, false
	}
	return false, false
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
