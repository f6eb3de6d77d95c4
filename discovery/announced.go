package discovery

import (
	"net/netip"
	"slices"
)

// Announced returns what the advertiser announces now, for the status page:
// the .local host name its SRV records point at (e.g. "possync.local", or
// "possync-1a2b3c.local" after a name conflict) and the addresses of the
// selected interfaces (none before Start).
func (a *Advertiser) Announced() (host string, addrs []netip.Addr) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return trimLocal(a.host) + ".local", selectionAddrs(a.ifcs)
}

// LANAddrs returns the addresses the box would announce on the interfaces
// chosen as the advertiser chooses them (names empty = every usable one):
// what to show staff when mDNS is off.
func LANAddrs(names []string) ([]netip.Addr, error) {
	all, err := systemInterfaces()
	if err != nil {
		return nil, err
	}
	sel, _ := SelectInterfaces(all, names)
	return selectionAddrs(sel), nil
}

func selectionAddrs(ifcs []Interface) []netip.Addr {
	var out []netip.Addr
	for _, ifc := range ifcs {
		v4, v6 := hostAddrs(ifc)
		out = append(out, v4...)
		out = append(out, v6...)
	}
	slices.SortStableFunc(out, func(x, y netip.Addr) int {
		if x.Is4() != y.Is4() {
			if x.Is4() {
				return -1
			}
			return 1
		}
		return 0
	})
	return slices.Compact(out)
}
