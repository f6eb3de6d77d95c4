package discovery

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"net"
	"net/netip"
	"slices"
	"sync"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// mdnsPort is the mDNS UDP port.
const mdnsPort = 5353

var (
	groupV4 = &net.UDPAddr{IP: net.IPv4(224, 0, 0, 251), Port: mdnsPort}
	groupV6 = &net.UDPAddr{IP: net.ParseIP("ff02::fb"), Port: mdnsPort}
)

// packet is one mDNS message received on our sockets.
type packet struct {
	msg     *dns.Msg
	src     *net.UDPAddr // keeps the IPv6 zone for unicast replies
	from    netip.Addr   // src without zone, for comparisons
	ifIndex int          // interface the packet came in on (0 = unknown)
	own     bool         // our own multicast, looped back
}

// sentMemory is how many of our last multicast messages are remembered, to
// tell our own looped-back packets from identical-looking ones sent by
// another responder on this machine (avahi probes the same addresses).
const sentMemory = 64

// mconn is possync's own pair of mDNS sockets, next to zeroconf's. It binds
// *:5353 with SO_REUSEADDR and SO_REUSEPORT so that it shares the port with
// zeroconf's sockets and with an OS responder (avahi).
type mconn struct {
	v4 *ipv4.PacketConn
	v6 *ipv6.PacketConn

	// mu guards the fields that follow and serializes
	// SetMulticastInterface+WriteTo pairs.
	mu      sync.Mutex
	joined4 map[int]bool
	joined6 map[int]bool
	sent    [sentMemory]uint64 // hashes of the last messages multicast
	next    int                // next slot in sent
}

var sentSeed = maphash.MakeSeed()

// openConn binds the sockets and joins the mDNS groups on ifcs. It fails
// only when neither IPv4 nor IPv6 can be used.
func openConn(ifcs []Interface) (*mconn, error) {
	lc := net.ListenConfig{Control: reusePort}
	c := &mconn{joined4: map[int]bool{}, joined6: map[int]bool{}}
	// Binding a multicast address makes Go bind the wildcard address with
	// SO_REUSEADDR on every platform; reusePort adds SO_REUSEPORT.
	p4, err4 := lc.ListenPacket(context.Background(), "udp4", groupV4.String())
	if err4 == nil {
		c.v4 = ipv4.NewPacketConn(p4)
		_ = c.v4.SetControlMessage(ipv4.FlagInterface, true)
		_ = c.v4.SetMulticastTTL(255)
		_ = c.v4.SetTTL(255)
		_ = c.v4.SetMulticastLoopback(true)
	}
	p6, err6 := lc.ListenPacket(context.Background(), "udp6", groupV6.String())
	if err6 == nil {
		c.v6 = ipv6.NewPacketConn(p6)
		_ = c.v6.SetControlMessage(ipv6.FlagInterface, true)
		_ = c.v6.SetMulticastHopLimit(255)
		_ = c.v6.SetHopLimit(255)
		_ = c.v6.SetMulticastLoopback(true)
	}
	if c.v4 == nil && c.v6 == nil {
		return nil, fmt.Errorf("bind udp port %d: %w", mdnsPort, errors.Join(err4, err6))
	}
	if err := c.join(ifcs); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// join makes the group memberships match ifcs: it joins new interfaces and
// leaves those no longer selected. It fails when no interface could be
// joined at all.
func (c *mconn) join(ifcs []Interface) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	want := make(map[int]bool, len(ifcs))
	var errs []error
	ok := 0
	for _, ifc := range ifcs {
		want[ifc.Index] = true
		ni, err := net.InterfaceByIndex(ifc.Index)
		if err != nil {
			errs = append(errs, fmt.Errorf("interface %s: %w", ifc.Name, err))
			continue
		}
		if c.v4 != nil && !c.joined4[ifc.Index] {
			if err := c.v4.JoinGroup(ni, groupV4); err != nil {
				errs = append(errs, fmt.Errorf("join %s on %s: %w", groupV4.IP, ifc.Name, err))
			} else {
				c.joined4[ifc.Index] = true
			}
		}
		if c.v6 != nil && !c.joined6[ifc.Index] {
			if err := c.v6.JoinGroup(ni, groupV6); err != nil {
				errs = append(errs, fmt.Errorf("join %s on %s: %w", groupV6.IP, ifc.Name, err))
			} else {
				c.joined6[ifc.Index] = true
			}
		}
		if c.joined4[ifc.Index] || c.joined6[ifc.Index] {
			ok++
		}
	}
	for idx := range c.joined4 {
		if !want[idx] {
			if ni, err := net.InterfaceByIndex(idx); err == nil {
				_ = c.v4.LeaveGroup(ni, groupV4)
			}
			delete(c.joined4, idx)
		}
	}
	for idx := range c.joined6 {
		if !want[idx] {
			if ni, err := net.InterfaceByIndex(idx); err == nil {
				_ = c.v6.LeaveGroup(ni, groupV6)
			}
			delete(c.joined6, idx)
		}
	}
	if ok == 0 {
		return fmt.Errorf("join mDNS group on no interface: %w", errors.Join(errs...))
	}
	return nil
}

// serve reads packets from both sockets and hands each parsed message to h
// until the sockets are closed. It returns when both readers are done.
func (c *mconn) serve(h func(packet)) {
	var wg sync.WaitGroup
	if c.v4 != nil {
		wg.Go(func() {
			buf := make([]byte, 9000)
			for {
				n, cm, src, err := c.v4.ReadFrom(buf)
				if err != nil {
					if errors.Is(err, net.ErrClosed) {
						return
					}
					continue
				}
				idx := 0
				if cm != nil {
					idx = cm.IfIndex
				}
				c.deliver(buf[:n], src, idx, h)
			}
		})
	}
	if c.v6 != nil {
		wg.Go(func() {
			buf := make([]byte, 9000)
			for {
				n, cm, src, err := c.v6.ReadFrom(buf)
				if err != nil {
					if errors.Is(err, net.ErrClosed) {
						return
					}
					continue
				}
				idx := 0
				if cm != nil {
					idx = cm.IfIndex
				}
				c.deliver(buf[:n], src, idx, h)
			}
		})
	}
	wg.Wait()
}

func (c *mconn) deliver(b []byte, src net.Addr, ifIndex int, h func(packet)) {
	ua, ok := src.(*net.UDPAddr)
	if !ok {
		return
	}
	msg := new(dns.Msg)
	if err := msg.Unpack(b); err != nil {
		return
	}
	from, _ := netip.AddrFromSlice(ua.IP)
	h(packet{msg: msg, src: ua, from: from.Unmap(), ifIndex: ifIndex, own: c.sentByUs(b)})
}

// sentByUs reports whether b is one of our last multicast messages.
func (c *mconn) sentByUs(b []byte) bool {
	sum := maphash.Bytes(sentSeed, b)
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Contains(c.sent[:], sum)
}

// multicast sends msg to the mDNS groups out of one interface, over IPv4
// when the interface has an IPv4 address and over IPv6 when it has an IPv6
// one. It fails only when nothing could be sent.
func (c *mconn) multicast(msg *dns.Msg, ifc Interface) error {
	return c.multicastFamily(msg, ifc, true, true)
}

// reply multicasts an answer out of ifc over the address family the query
// came in on, so a querier asking over both gets one answer on each.
func (c *mconn) reply(msg *dns.Msg, ifc Interface, query *net.UDPAddr) error {
	v4 := query.IP.To4() != nil
	return c.multicastFamily(msg, ifc, v4, !v4)
}

func (c *mconn) multicastFamily(msg *dns.Msg, ifc Interface, use4, use6 bool) error {
	b, err := msg.Pack()
	if err != nil {
		return fmt.Errorf("pack mDNS message: %w", err)
	}
	ni, err := net.InterfaceByIndex(ifc.Index)
	if err != nil {
		return fmt.Errorf("interface %s: %w", ifc.Name, err)
	}
	v4, v6 := hostAddrs(ifc)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sent[c.next] = maphash.Bytes(sentSeed, b)
	c.next = (c.next + 1) % sentMemory
	var errs []error
	sent := false
	if use4 && c.v4 != nil && (len(v4) > 0 || ifc.loopback()) {
		if err := c.v4.SetMulticastInterface(ni); err != nil {
			errs = append(errs, err)
		} else if _, err := c.v4.WriteTo(b, nil, groupV4); err != nil {
			errs = append(errs, err)
		} else {
			sent = true
		}
	}
	if use6 && c.v6 != nil && len(v6) > 0 {
		if err := c.v6.SetMulticastInterface(ni); err != nil {
			errs = append(errs, err)
		} else if _, err := c.v6.WriteTo(b, nil, groupV6); err != nil {
			errs = append(errs, err)
		} else {
			sent = true
		}
	}
	if !sent {
		return fmt.Errorf("send mDNS on %s: %w", ifc.Name, errors.Join(append(errs, errors.New("no usable address family"))...))
	}
	return nil
}

// unicast sends msg to one peer (a legacy or QU querier).
func (c *mconn) unicast(msg *dns.Msg, dst *net.UDPAddr) error {
	b, err := msg.Pack()
	if err != nil {
		return fmt.Errorf("pack mDNS message: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if dst.IP.To4() != nil {
		if c.v4 == nil {
			return errors.New("send mDNS unicast: no IPv4 socket")
		}
		_, err = c.v4.WriteTo(b, nil, dst)
	} else {
		if c.v6 == nil {
			return errors.New("send mDNS unicast: no IPv6 socket")
		}
		_, err = c.v6.WriteTo(b, nil, dst)
	}
	if err != nil {
		return fmt.Errorf("send mDNS unicast to %s: %w", dst, err)
	}
	return nil
}

// close closes both sockets; serve returns soon after.
func (c *mconn) close() {
	if c.v4 != nil {
		_ = c.v4.Close()
	}
	if c.v6 != nil {
		_ = c.v6.Close()
	}
}
