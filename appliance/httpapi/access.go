package httpapi

import (
	"net"
	"net/netip"
	"strings"

	"github.com/valyala/fasthttp"

	"possync/appliance"
)

// DefaultAllowedNetworks is where clients may connect from unless
// Options.AllowedNetworks says otherwise: loopback, RFC 1918, link-local
// and IPv6 unique-local addresses — a shop's LAN, never the internet.
var DefaultAllowedNetworks = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("fc00::/7"),
}

// Refusal rules of the access checks (possync_refused_requests_total).
const (
	ruleNetwork  = "network"  // client address outside security.allowed_networks
	ruleOrigin   = "origin"   // Origin header outside security.allowed_origins
	ruleDatabase = "database" // database outside security.allowed_databases (engine)
	ruleLimit    = "limit"    // the box tracks its limit of databases, multi-sessions or terminals (engine)
)

// access holds the access rules checked on every request before its body
// is read.
type access struct {
	nets    []netip.Prefix
	netsMsg string          // the configured networks as a refusal names them
	origins map[string]bool // nil = any origin (CORS "*")
}

func newAccess(nets []netip.Prefix, origins []string) *access {
	msg := "default: loopback and private LAN addresses"
	if nets == nil {
		nets = DefaultAllowedNetworks
	} else {
		names := make([]string, len(nets))
		for i, p := range nets {
			names[i] = p.String()
		}
		msg = strings.Join(names, ", ")
		if len(msg) > 200 {
			msg = msg[:200] + "…"
		}
	}
	a := &access{nets: make([]netip.Prefix, len(nets)), netsMsg: msg} // a copy: never write the caller's (or the default) slice
	for i, p := range nets {
		a.nets[i] = p.Masked()
	}
	if len(origins) > 0 {
		a.origins = make(map[string]bool, len(origins))
		for _, o := range origins {
			a.origins[NormalizeOrigin(o)] = true
		}
	}
	return a
}

// NormalizeOrigin lowercases an origin and drops a trailing slash, the
// form an allowed origin is compared in.
func NormalizeOrigin(o string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(o)), "/")
}

// allowedAddr reports whether a client address is in an allowed network.
// IPv4-mapped IPv6 addresses (::ffff:198.51.100.2, what a dual-stack
// socket reports for an IPv4 client) are matched as IPv4.
func (a *access) allowedAddr(addr net.Addr) (netip.Addr, bool) {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return netip.Addr{}, true // not an IP socket (in-memory listener in tests)
	}
	ip, ok := netip.AddrFromSlice(tcp.IP)
	if !ok {
		return ip, false
	}
	ip = ip.Unmap()
	for _, p := range a.nets {
		if p.Contains(ip) {
			return ip, true
		}
	}
	return ip, false
}

// check applies the network and origin rules to a request whose head has
// been read. On a refusal it answers 403 with a JSON-RPC error naming the
// rule and the value, counts and logs it, and returns false; the body is
// never read. With allowed origins set, an allowed Origin is echoed in
// Access-Control-Allow-Origin (Vary: Origin); a refused one gets no CORS
// grant at all. Requests without Origin (curl, same-origin GETs of the
// status page) pass the origin rule: only a browser page of another origin
// sends one, and that is what the rule is about. "null" (sandboxed
// frames, file: pages) is refused unless listed literally.
func (s *Server) check(ctx *fasthttp.RequestCtx) bool {
	if ip, ok := s.access.allowedAddr(ctx.RemoteAddr()); !ok && !selfHealth(ctx) {
		setCORS(ctx)
		s.forbid(ctx, ruleNetwork, ip.String(),
			"client address "+ip.String()+" is not in security.allowed_networks ("+s.access.netsMsg+")")
		return false
	}
	origin := ctx.Request.Header.Peek(fasthttp.HeaderOrigin)
	if s.access.origins == nil {
		setCORS(ctx)
		return true
	}
	ctx.Response.Header.Set(fasthttp.HeaderVary, "Origin")
	if len(origin) == 0 {
		return true
	}
	if !s.access.origins[NormalizeOrigin(string(origin))] {
		s.forbid(ctx, ruleOrigin, string(origin),
			"origin "+string(origin)+" is not in security.allowed_origins")
		return false
	}
	ctx.Response.Header.SetBytesV("Access-Control-Allow-Origin", origin)
	return true
}

// fromItself reports whether a connection comes from this machine: its
// source address is the address it connected to (127.0.0.1 → 127.0.0.1,
// or the box's LAN address to itself). No other host can complete a TCP
// handshake with that source address.
func fromItself(remote, local net.Addr) bool {
	r, ok1 := remote.(*net.TCPAddr)
	l, ok2 := local.(*net.TCPAddr)
	return ok1 && ok2 && r.IP.Equal(l.IP)
}

// selfHealth reports whether ctx is GET /healthz from this machine itself,
// which is served whatever security.allowed_networks says: possync
// boot-check asks it after an update, over loopback, and would otherwise
// mark every new release bad on a box whose allowed networks leave out
// loopback. The listener lets such connections through (screen); every
// other route is refused here as before.
func selfHealth(ctx *fasthttp.RequestCtx) bool {
	return string(ctx.Path()) == "/healthz" && fromItself(ctx.RemoteAddr(), ctx.LocalAddr())
}

// forbid answers a request refused by an access rule: 403, a JSON-RPC
// error naming the rule and value, the connection closed after draining
// the unread body, a log line at most once a minute per rule and source,
// the refusal counted and shown on the status page.
func (s *Server) forbid(ctx *fasthttp.RequestCtx, rule, value, msg string) {
	host := remoteHost(ctx.RemoteAddr())
	if s.limits.allow(rule, host) {
		s.log.Warn("refused request", "rule", rule, "value", value, "remote", host,
			"method", string(ctx.Method()), "path", string(ctx.Path()), "err", msg)
	}
	ctx.SetUserValue(ruleKey, rule)
	s.refused(ctx, rule, msg)
	ctx.SetStatusCode(fasthttp.StatusForbidden)
	ctx.SetContentType("application/json")
	ctx.SetBody(appendRPCError(nil, nil, appliance.EFORBIDDEN, msg))
	ctx.SetConnectionClose()
	if c, ok := ctx.Conn().(*conn); ok {
		c.lingerOnClose()
	}
}

// ruleKey is the user value under which forbid leaves the rule, so
// handleCounted does not count the refusal twice.
const ruleKey = "possync.rule"
