package discovery

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
)

// Interface is what interface selection needs to know about one network
// interface: a snapshot, so that selection is a pure function.
type Interface struct {
	Name  string
	Index int
	Flags net.Flags
	Addrs []netip.Addr // unicast addresses, unmapped, with IPv6 zones stripped
}

func (i Interface) up() bool        { return i.Flags&net.FlagUp != 0 }
func (i Interface) running() bool   { return i.Flags&net.FlagRunning != 0 }
func (i Interface) multicast() bool { return i.Flags&net.FlagMulticast != 0 }
func (i Interface) loopback() bool  { return i.Flags&net.FlagLoopback != 0 }
func (i Interface) p2p() bool       { return i.Flags&net.FlagPointToPoint != 0 }

// SelectInterfaces picks the interfaces to announce on.
//
// With names, it returns the named interfaces that are up, in the order
// given (loopback too, when named), and lists the others in skipped.
// Without names, it returns every interface that is up, running,
// multicast-capable, not loopback, not point-to-point (VPN tunnels) and has
// an address; only when there is none does it fall back to the loopback
// interfaces that are up, so a box without a network still announces to
// itself.
func SelectInterfaces(all []Interface, names []string) (selected []Interface, skipped []string) {
	if len(names) > 0 {
		for _, name := range names {
			i := slices.IndexFunc(all, func(ifc Interface) bool { return ifc.Name == name })
			if i < 0 || !all[i].up() {
				skipped = append(skipped, name)
				continue
			}
			if !slices.ContainsFunc(selected, func(ifc Interface) bool { return ifc.Name == name }) {
				selected = append(selected, all[i])
			}
		}
		return selected, skipped
	}
	for _, ifc := range all {
		if ifc.up() && ifc.running() && ifc.multicast() && !ifc.loopback() && !ifc.p2p() && len(ifc.Addrs) > 0 {
			selected = append(selected, ifc)
		}
	}
	if len(selected) > 0 {
		return selected, nil
	}
	for _, ifc := range all {
		if ifc.up() && ifc.loopback() {
			selected = append(selected, ifc)
		}
	}
	return selected, nil
}

// hostAddrs returns the addresses to answer with on one interface: IPv4 and
// IPv6 (global, unique-local and link-local), never loopback addresses unless
// the interface is the loopback interface.
func hostAddrs(ifc Interface) (v4, v6 []netip.Addr) {
	for _, a := range ifc.Addrs {
		if a.IsLoopback() && !ifc.loopback() {
			continue
		}
		if a.IsMulticast() || a.IsUnspecified() {
			continue
		}
		if a.Is4() {
			v4 = append(v4, a)
		} else {
			v6 = append(v6, a)
		}
	}
	return v4, v6
}

// sameInterfaces reports whether two selections name the same interfaces
// (by name and index, in order).
func sameInterfaces(a, b []Interface) bool {
	return slices.EqualFunc(a, b, func(x, y Interface) bool { return x.Name == y.Name && x.Index == y.Index })
}

// sameAddrs reports whether two selections have the same addresses.
func sameAddrs(a, b []Interface) bool {
	return slices.EqualFunc(a, b, func(x, y Interface) bool { return slices.Equal(x.Addrs, y.Addrs) })
}

// describe renders a selection for logs: "eth0[192.168.1.5 fe80::1] wlan0[]".
func describe(ifcs []Interface) string {
	parts := make([]string, len(ifcs))
	for i, ifc := range ifcs {
		addrs := make([]string, len(ifc.Addrs))
		for j, a := range ifc.Addrs {
			addrs[j] = a.String()
		}
		parts[i] = fmt.Sprintf("%s[%s]", ifc.Name, strings.Join(addrs, " "))
	}
	return strings.Join(parts, " ")
}

// systemInterfaces snapshots the host's interfaces and their addresses.
func systemInterfaces() ([]Interface, error) {
	ifcs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	out := make([]Interface, 0, len(ifcs))
	for _, ifc := range ifcs {
		addrs, err := ifc.Addrs()
		if err != nil {
			return nil, fmt.Errorf("addresses of %s: %w", ifc.Name, err)
		}
		s := Interface{Name: ifc.Name, Index: ifc.Index, Flags: ifc.Flags}
		for _, a := range addrs {
			if p, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(p.IP); ok {
					s.Addrs = append(s.Addrs, ip.Unmap().WithZone(""))
				}
			}
		}
		slices.SortFunc(s.Addrs, func(x, y netip.Addr) int { return x.Compare(y) })
		out = append(out, s)
	}
	return out, nil
}

// netInterfaces converts a selection to the net.Interface values zeroconf
// wants, skipping interfaces that vanished since the snapshot.
func netInterfaces(ifcs []Interface) []net.Interface {
	out := make([]net.Interface, 0, len(ifcs))
	for _, ifc := range ifcs {
		if ni, err := net.InterfaceByIndex(ifc.Index); err == nil {
			out = append(out, *ni)
		}
	}
	return out
}
