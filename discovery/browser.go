package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/grandcat/zeroconf"
	"github.com/miekg/dns"
)

// Box is one possync box found on the network.
type Box struct {
	Instance string       // DNS-SD instance name, unescaped
	Host     string       // SRV target without the final dot, "possync.local"
	Port     int          // HTTP port
	Addrs    []netip.Addr // addresses announced for Host, IPv4 first
	TXT      TXT          // decoded TXT record
}

// URLs returns the addresses to type into Odoo's "Sync Server" field: one
// per IPv4 address, then the .local host name, then routable IPv6 addresses
// (link-local ones are left out: a URL cannot carry their zone portably).
func (b Box) URLs() []string {
	scheme := b.TXT.Scheme
	if scheme == "" {
		scheme = "http"
	}
	path := b.TXT.Path
	if path == "/" {
		path = ""
	} else if path != "" && !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	port := strconv.Itoa(b.Port)
	var urls []string
	for _, a := range b.Addrs {
		if a.Is4() {
			urls = append(urls, scheme+"://"+net.JoinHostPort(a.String(), port)+path)
		}
	}
	if b.Host != "" {
		urls = append(urls, scheme+"://"+net.JoinHostPort(b.Host, port)+path)
	}
	for _, a := range b.Addrs {
		if a.Is6() && !a.IsLinkLocalUnicast() {
			urls = append(urls, scheme+"://"+net.JoinHostPort(a.String(), port)+path)
		}
	}
	return urls
}

// boxFromEntry converts what zeroconf reports into a Box, undoing the
// presentation-format escapes miekg/dns leaves in names and TXT strings.
func boxFromEntry(e *zeroconf.ServiceEntry) Box {
	b := Box{
		Instance: unescape(e.Instance),
		Host:     unescape(strings.TrimSuffix(e.HostName, ".")),
		Port:     e.Port,
		TXT:      DecodeTXT(unescapeTXT(e.Text)),
	}
	for _, ip := range slices.Concat(e.AddrIPv4, e.AddrIPv6) {
		if a, ok := netip.AddrFromSlice(ip); ok {
			a = a.Unmap()
			if !slices.Contains(b.Addrs, a) {
				b.Addrs = append(b.Addrs, a)
			}
		}
	}
	slices.SortStableFunc(b.Addrs, func(x, y netip.Addr) int {
		if x.Is4() != y.Is4() {
			if x.Is4() {
				return -1
			}
			return 1
		}
		return 0
	})
	return b
}

// Browser finds possync boxes by browsing _possync._tcp in local.
type Browser struct {
	Interfaces []string     // interface names; empty = SelectInterfaces default
	Logger     *slog.Logger // nil = slog.Default()
}

// requery is when, after the start of a browse, the PTR query is sent again
// on possync's own socket: zeroconf's resolver asks once and then only after
// 4 s, so one lost packet would cost a short browse its answer.
var requery = []time.Duration{300 * time.Millisecond, 1 * time.Second, 2 * time.Second, 4 * time.Second}

// Run browses until ctx is done and calls found once per box, from one
// goroutine, as soon as its address is known. It returns nil when ctx ends
// the browse.
func (b *Browser) Run(ctx context.Context, found func(Box)) error {
	log := b.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "discovery")
	all, err := systemInterfaces()
	if err != nil {
		return err
	}
	sel, skipped := SelectInterfaces(all, b.Interfaces)
	if len(skipped) > 0 {
		log.Warn("interfaces missing or down", "interfaces", skipped)
	}
	if len(sel) == 0 {
		return ErrNoInterface
	}
	res, err := newResolver(netInterfaces(sel))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	entries := make(chan *zeroconf.ServiceEntry)
	if err := res.Browse(ctx, ServiceType, Domain, entries); err != nil {
		return fmt.Errorf("browse %s: %w", ServiceType, err)
	}
	if conn, err := openConn(sel); err != nil {
		log.Debug("no socket for repeated queries", "err", err)
	} else {
		defer conn.close()
		go repeatQuery(ctx, conn, sel)
	}
	seen := map[string]bool{}
	for e := range entries { // zeroconf closes entries when ctx is done
		box := boxFromEntry(e)
		if box.Port == 0 || seen[box.Instance] {
			continue
		}
		seen[box.Instance] = true
		found(box)
	}
	return nil
}

// newResolver joins IPv4 and IPv6 when it can; zeroconf gives up when
// either family fails, so fall back to the one that works.
func newResolver(ifcs []net.Interface) (*zeroconf.Resolver, error) {
	var errs []error
	for _, t := range []zeroconf.IPType{zeroconf.IPv4AndIPv6, zeroconf.IPv4, zeroconf.IPv6} {
		r, err := zeroconf.NewResolver(zeroconf.SelectIfaces(ifcs), zeroconf.SelectIPTraffic(t))
		if err == nil {
			return r, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("start mDNS resolver: %w", errors.Join(errs...))
}

func repeatQuery(ctx context.Context, conn *mconn, ifcs []Interface) {
	q := new(dns.Msg)
	q.SetQuestion(ServiceType+"."+Domain, dns.TypePTR)
	q.RecursionDesired = false
	start := time.Now()
	for _, at := range requery {
		if sleep(ctx, time.Until(start.Add(at))) != nil {
			return
		}
		for _, ifc := range ifcs {
			_ = conn.multicast(q, ifc)
		}
	}
}
