package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/grandcat/zeroconf"

	"possync/appliance"
)

// Service types announced by the Advertiser.
const (
	ServiceType = "_possync._tcp"
	HTTPType    = "_http._tcp"
	Domain      = "local."
)

// DefaultHostname is the .local host name answered when none is configured.
const DefaultHostname = "possync"

// ErrNoInterface is returned by Start when no interface can carry mDNS.
var ErrNoInterface = errors.New("no usable network interface for mDNS")

// Options configures an Advertiser. Only Port and ID are required.
type Options struct {
	Port         int           // HTTP port to announce
	ID           string        // stable box id (see BoxID)
	Scheme       string        // "http" (default) or "https"
	Path         string        // URL path of the Sync Server; "" = "/"
	Version      string        // "" = appliance.Version
	Instance     string        // DNS-SD instance name; "" = "possync-<short id>"
	Hostname     string        // .local host label; "" = DefaultHostname
	Interfaces   []string      // interface names; empty = SelectInterfaces default
	PollInterval time.Duration // interface/address check period; 0 = 2 s
	Logger       *slog.Logger  // nil = slog.Default()
}

// Advertiser announces the box over mDNS/DNS-SD: _possync._tcp and
// _http._tcp through zeroconf, plus the host name (A/AAAA) and the
// re-announcements and goodbyes zeroconf does not do, on its own sockets.
type Advertiser struct {
	opts Options
	log  *slog.Logger
	txt  []string
	http []string

	startOnce sync.Once
	startErr  error
	conn      *mconn
	served    chan struct{} // closed when conn.serve returns

	recheck chan string // conflicts seen by handle: probe the names again

	// mu guards the fields that follow. It is never held while sending.
	mu       sync.Mutex
	all      []Interface // every interface at the last check, for isLocal
	ifcs     []Interface // the selection
	host     string      // SRV target FQDN
	ownHost  bool        // possync answers A/AAAA for host
	hostByOS bool        // the OS responder (avahi) answers for host
	claimed  bool        // the names are probed on the current links and announced
	instance string      // raw instance name in use
	probes   chan packet // non-nil while probing

	servers []*zeroconf.Server // only touched by Run
}

// NewAdvertiser validates opts. It does no I/O.
func NewAdvertiser(opts Options) (*Advertiser, error) {
	if opts.Port <= 0 || opts.Port > 65535 {
		return nil, fmt.Errorf("advertiser: port %d out of range", opts.Port)
	}
	if opts.ID == "" {
		return nil, errors.New("advertiser: missing box id")
	}
	if opts.Scheme == "" {
		opts.Scheme = "http"
	}
	if opts.Scheme != "http" && opts.Scheme != "https" {
		return nil, fmt.Errorf("advertiser: scheme %q: want http or https", opts.Scheme)
	}
	if opts.Path == "" {
		opts.Path = "/"
	}
	if opts.Version == "" {
		opts.Version = appliance.Version
	}
	if opts.Hostname == "" {
		opts.Hostname = DefaultHostname
	}
	label := HostLabel(opts.Hostname)
	if label == "" {
		return nil, fmt.Errorf("advertiser: host name %q has no letters or digits", opts.Hostname)
	}
	opts.Hostname = label
	if opts.PollInterval <= 0 {
		opts.PollInterval = 2 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	txt, err := EncodeTXT(TXT{Version: opts.Version, ID: opts.ID, Path: opts.Path, API: API, Scheme: opts.Scheme})
	if err != nil {
		return nil, fmt.Errorf("advertiser: %w", err)
	}
	httpTXT, _ := EncodeTXT(TXT{Path: opts.Path})
	return &Advertiser{
		opts:     opts,
		log:      opts.Logger.With("component", "discovery"),
		txt:      txt,
		http:     httpTXT,
		instance: InstanceName(opts.Instance, opts.ID),
		host:     hostFQDN(label),
		recheck:  make(chan string, 1),
		served:   make(chan struct{}),
	}, nil
}

// Start picks the interfaces and binds possync's mDNS sockets. It fails when
// no interface can carry mDNS or UDP port 5353 cannot be bound; the caller
// then serves without discovery. Calling it again returns the first result.
func (a *Advertiser) Start() error {
	a.startOnce.Do(func() { a.startErr = a.start() })
	return a.startErr
}

func (a *Advertiser) start() error {
	all, err := systemInterfaces()
	if err != nil {
		return err
	}
	sel, skipped := SelectInterfaces(all, a.opts.Interfaces)
	if len(sel) == 0 {
		if len(skipped) > 0 {
			return fmt.Errorf("%w: configured interfaces %v missing or down", ErrNoInterface, skipped)
		}
		return ErrNoInterface
	}
	if len(skipped) > 0 {
		a.log.Warn("configured interfaces missing or down; announcing on the others", "missing", skipped, "using", describe(sel))
	}
	conn, err := openConn(sel)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.all, a.ifcs, a.conn = all, sel, conn
	a.mu.Unlock()
	go func() {
		defer close(a.served)
		conn.serve(a.handle)
	}()
	return nil
}

// Run announces the box until ctx is done, then sends goodbyes (TTL 0) and
// releases the sockets; it returns nil after a clean shutdown. It calls
// Start if the caller has not.
func (a *Advertiser) Run(ctx context.Context) error {
	if err := a.Start(); err != nil {
		return err
	}
	defer a.close()
	if err := a.claimNames(ctx); err != nil {
		return nil // ctx done while probing: nothing announced yet
	}
	if err := a.register(); err != nil {
		return err
	}
	// zeroconf waits up to half a second (two more "probes") before its
	// first announcement; the names are already probed, so announce now
	// (RFC 6762 8.3).
	a.announce(serviceTTL, nil)
	a.logAnnouncing("announcing")

	tick := time.NewTicker(a.opts.PollInterval)
	defer tick.Stop()
	var again <-chan time.Time // second announcement (RFC 6762 8.3)
	for {
		select {
		case <-ctx.Done():
			a.goodbye()
			return nil
		case <-tick.C:
			switch a.checkInterfaces() {
			case linkChanged:
				if !a.reclaim(ctx, "link change") {
					continue
				}
				fallthrough
			case addrChanged:
				again = time.After(time.Second)
			}
		case <-again:
			again = nil
			a.announce(serviceTTL, nil)
		case reason := <-a.recheck:
			if a.reclaim(ctx, reason) {
				again = time.After(time.Second)
			}
		}
	}
}

func (a *Advertiser) logAnnouncing(msg string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.log.Info(msg, "instance", a.instance, "service", ServiceType, "port", a.opts.Port,
		"host", a.host, "answers_host", a.ownHost, "interfaces", describe(a.ifcs))
}

// reclaim puts the names back into the probing state (RFC 6762 8.1 after a
// link change, section 9 after a conflict): possync stops answering for
// them and withdraws the zeroconf registrations (their goodbyes go out
// before anyone else re-announces the name), probes the names in use on the
// current links, moves to the fallback names when another device answers,
// and announces again. It reports whether it announced (false when ctx
// ended first).
func (a *Advertiser) reclaim(ctx context.Context, reason string) bool {
	a.mu.Lock()
	a.claimed, a.ownHost, a.hostByOS = false, false, false
	a.mu.Unlock()
	a.log.Info("probing the names again before announcing", "reason", reason)
	a.unregister()
	if err := a.claimNames(ctx); err != nil {
		return false
	}
	select { // a conflict reported while probing is settled by this probe
	case <-a.recheck:
	default:
	}
	if err := a.register(); err != nil {
		a.log.Warn("mDNS announcement stopped", "err", err)
		return false
	}
	a.announce(serviceTTL, nil)
	a.logAnnouncing("announcing again")
	return true
}

// servicesLocked returns the registrations as announced. a.mu must be held.
func (a *Advertiser) servicesLocked() []service { return a.services(a.host, a.instance) }

// register (re)creates the zeroconf servers for the current selection. They
// answer browse and lookup queries and send the first announcements.
func (a *Advertiser) register() error {
	a.unregister()
	a.mu.Lock()
	svcs, ifcs, ips := a.servicesLocked(), netInterfaces(a.ifcs), loopbackIPs(a.ifcs)
	a.mu.Unlock()
	for _, s := range svcs {
		host := s.Host
		if ips != nil {
			// zeroconf answers queries from any interface some program
			// joined the mDNS group on: once a link comes up next to
			// avahi, it would tell the network that the host name is
			// 127.0.0.1 before possync has probed it there, and avahi on
			// other boxes would give the name up. Loopback records name
			// no .local host.
			host = "localhost."
		}
		// RegisterProxy with no addresses makes zeroconf answer with the
		// addresses of the interface each query came in on, read at query
		// time, instead of a list frozen at registration. Domain "local"
		// without the dot keeps it from appending ".local" to the host.
		srv, err := zeroconf.RegisterProxy(escapeLabel(s.Instance), s.Type, "local", s.Port, host, ips, escapeTXT(s.Text), ifcs)
		if err != nil {
			a.unregister()
			return fmt.Errorf("register %s on %d interfaces: %w", s.Type, len(ifcs), err)
		}
		a.servers = append(a.servers, srv)
	}
	return nil
}

// loopbackIPs returns the addresses to hand zeroconf when only loopback
// interfaces are selected: it never announces loopback addresses of its own
// accord, which would leave the fallback announcing a service without an
// address. Otherwise it returns nil (addresses read per query).
func loopbackIPs(ifcs []Interface) []string {
	var ips []string
	for _, ifc := range ifcs {
		if !ifc.loopback() {
			return nil
		}
		v4, v6 := hostAddrs(ifc)
		for _, a := range slices.Concat(v4, v6) {
			ips = append(ips, a.String())
		}
	}
	return ips
}

// unregister shuts the zeroconf servers down; each sends its own goodbye.
func (a *Advertiser) unregister() {
	var wg sync.WaitGroup
	for _, s := range a.servers {
		wg.Go(s.Shutdown)
	}
	wg.Wait()
	a.servers = nil
}

// announce sends every record (services, and the host when possync answers
// for it) on every selected interface, with the cache-flush bit so peers
// replace what they hold. ttl 0 makes it a goodbye. gone lists, per
// interface index, addresses that disappeared: they are withdrawn (TTL 0) in
// the same packet, since a cache flush only covers the record types that are
// announced again.
func (a *Advertiser) announce(ttl uint32, gone map[int][]netip.Addr) {
	a.mu.Lock()
	svcs, ifcs, host := a.servicesLocked(), slices.Clone(a.ifcs), ""
	if a.ownHost {
		host = a.host
	}
	a.mu.Unlock()
	for _, ifc := range ifcs {
		m := announcement(svcs, host, ifc, ttl)
		if host != "" && len(gone[ifc.Index]) > 0 {
			v4, v6 := hostAddrs(Interface{Addrs: gone[ifc.Index]})
			m.Answer = append(m.Answer, hostRecords(host, v4, v6, 0, true)...)
		}
		if err := a.conn.multicast(m, ifc); err != nil {
			a.log.Debug("announce", "interface", ifc.Name, "ttl", ttl, "err", err)
		}
	}
}

// goodbye withdraws everything: our own goodbye (services and host records,
// TTL 0), then zeroconf's, which repeats the service part.
func (a *Advertiser) goodbye() {
	a.announce(0, nil)
	a.unregister()
	a.log.Info("sent mDNS goodbye", "instance", a.instance)
}

// close releases the sockets and waits for the reader.
func (a *Advertiser) close() {
	a.unregister()
	a.conn.close()
	<-a.served
}

// change is what checkInterfaces found.
type change int

const (
	noChange    change = iota
	addrChanged        // same interfaces, other addresses: announced again
	linkChanged        // interfaces came or went: the names must be probed again
)

// checkInterfaces re-reads the interfaces. Changed addresses alone are
// re-announced at once. A changed selection (a link that came up, a cable
// plugged in) joins the mDNS groups on the new interfaces and reports
// linkChanged: the caller probes the names again before anything is
// announced there (RFC 6762 8.1), since another device may own them on
// that link.
func (a *Advertiser) checkInterfaces() change {
	all, err := systemInterfaces()
	if err != nil {
		a.log.Debug("check interfaces", "err", err)
		return noChange
	}
	sel, _ := SelectInterfaces(all, a.opts.Interfaces)
	a.mu.Lock()
	old := a.ifcs
	a.all = all
	switch {
	case len(sel) == 0:
	case !sameInterfaces(old, sel):
		// Stop answering before the new link is in the selection: the
		// host name is not probed there yet.
		a.claimed, a.ownHost = false, false
		a.ifcs = sel
	default:
		a.ifcs = sel
	}
	a.mu.Unlock()
	switch {
	case len(sel) == 0:
		return noChange
	case !sameInterfaces(old, sel):
		a.log.Info("interfaces changed, probing the names again", "interfaces", describe(sel))
		if err := a.conn.join(sel); err != nil {
			a.log.Warn("mDNS on new interfaces", "err", err)
		}
		return linkChanged
	case !sameAddrs(old, sel):
		a.log.Info("addresses changed, announcing again", "interfaces", describe(sel))
		a.announce(serviceTTL, goneAddrs(old, sel))
		return addrChanged
	}
	return noChange
}

// goneAddrs lists, per interface index, the addresses in old that are not in
// cur.
func goneAddrs(old, cur []Interface) map[int][]netip.Addr {
	gone := map[int][]netip.Addr{}
	for _, o := range old {
		i := slices.IndexFunc(cur, func(c Interface) bool { return c.Index == o.Index })
		if i < 0 {
			continue
		}
		for _, addr := range o.Addrs {
			if !slices.Contains(cur[i].Addrs, addr) {
				gone[o.Index] = append(gone[o.Index], addr)
			}
		}
	}
	return gone
}
