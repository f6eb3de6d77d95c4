// Package discovery announces a possync box on the LAN over mDNS/DNS-SD
// (RFC 6762, RFC 6763) and finds boxes from another machine.
//
// # Wire contract
//
// A box registers, in the domain local., on its HTTP port:
//
//	_possync._tcp   instance "possync-<short id>" (or discovery.instance)
//	_http._tcp      same instance name, TXT path=/, so generic browsers link the status page
//
// The _possync._tcp TXT record holds one key=value string per key, each
// shorter than 255 bytes, keys case-insensitive:
//
//	version  possync version ("1.2.0", "dev")
//	id       stable box id: 16 hex digits, from /etc/machine-id and the NIC's MAC (hashed) or <data dir>/box-id
//	path     URL path of the Sync Server, "/"
//	api      pos_multi_session_sync/12
//	scheme   http or https
//
// The SRV target is <hostname>.local. (discovery.hostname, default
// "possync"). When no responder on the box already answers for that name
// (avahi-daemon normally does on the image), possync answers A/AAAA queries
// for it itself, with the addresses of the interface each query came in on,
// so browsers on Windows, macOS, iOS, Android and Linux with nss-mdns open
// http://possync.local:8079/ with no address configured.
//
// # Names and conflicts
//
// Before announcing, the Advertiser probes (RFC 6762 8.1) the host name and
// the instance names, and does so again on every link change and on every
// conflicting record it hears (RFC 6762 section 9), before announcing
// anything on that link (8.3). A name answered by a responder on the same
// machine is left to it (while that responder is still probing, possync
// waits for its result); a name answered by another device is not fought
// over: possync logs a warning naming the other device and uses
// <name>-<short id>. possync answers probes for its instance names itself,
// since zeroconf answers no query with an authority section. Simultaneous
// probes are settled by the 8.2 tie-break, the first one against a device
// deciding for all names of the round.
//
// # Lifecycle
//
// Advertiser.Start binds the sockets (a busy or missing network is reported
// there, so the caller can serve without discovery), and Advertiser.Run
// announces until its context ends, re-announcing within PollInterval (2 s)
// when an address changes and re-registering when the set of interfaces
// changes, then sends goodbyes (TTL 0) so browsers drop the box at once.
// Browser finds boxes; Box.URLs lists what to type into Odoo.
//
// # Around zeroconf
//
// github.com/grandcat/zeroconf serves the DNS-SD records. Its limits and how
// this package works around them:
//   - it does not answer host-name (A/AAAA) queries: possync's own socket
//     (miekg/dns, SO_REUSEADDR+SO_REUSEPORT on UDP 5353) does;
//   - its address list is frozen at Register: services are registered with
//     RegisterProxy and no addresses, which makes zeroconf read the
//     addresses of the receiving interface at query time;
//   - its interface list is frozen too, and it never re-announces: the
//     Advertiser polls the interfaces, re-announces changed addresses with
//     the cache-flush bit itself, and re-registers when interfaces change;
//   - it does not probe for conflicts: the Advertiser probes first, then
//     announces at once instead of waiting for zeroconf's first
//     announcement (up to 0.5 s later);
//   - it sends one goodbye packet: the Advertiser sends its own first;
//   - its resolver needs both IPv4 and IPv6 to start, queries once and
//     then only after 4 s, and returns names and TXT in escaped
//     presentation form: Browser falls back to one family, re-queries from
//     its own socket, and unescapes.
package discovery
