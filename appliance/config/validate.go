package config

import (
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Validate checks every value and returns Errors listing each bad key, or nil.
func (c *Config) Validate() error {
	var errs Errors
	bad := func(field string, v any, msg string) {
		errs = append(errs, &FieldError{Field: field, Value: v, Msg: msg})
	}

	if host, port, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
		bad("http.listen", c.HTTP.Listen, "must be host:port, e.g. \":8079\" or \"192.168.1.50:8079\"")
	} else {
		if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			bad("http.listen", c.HTTP.Listen, "port must be a number from 0 to 65535")
		}
		if host != "" && net.ParseIP(host) == nil && host != "localhost" {
			bad("http.listen", c.HTTP.Listen, "host must be empty, an IP address or localhost")
		}
	}
	if c.HTTP.MaxBodyBytes < 64<<10 || c.HTTP.MaxBodyBytes > 256<<20 {
		bad("http.max_body_bytes", c.HTTP.MaxBodyBytes, "must be from 65536 (64 KiB) to 268435456 (256 MiB)")
	}
	if d := c.HTTP.PollHold.D(); d < time.Second || d > 55*time.Second {
		bad("http.poll_hold", c.HTTP.PollHold, "must be from 1s to 55s (the POS gives up on a poll after 60s)")
	}
	for _, f := range []struct {
		name string
		d    Duration
	}{{"http.read_timeout", c.HTTP.ReadTimeout}, {"http.write_timeout", c.HTTP.WriteTimeout}, {"http.idle_timeout", c.HTTP.IdleTimeout}} {
		if f.d.D() < time.Second || f.d.D() > time.Hour {
			bad(f.name, f.d, "must be from 1s to 1h")
		}
	}
	if d := c.HTTP.HeaderTimeout.D(); d < time.Second || d > c.HTTP.ReadTimeout.D() {
		bad("http.header_timeout", c.HTTP.HeaderTimeout, "must be from 1s up to http.read_timeout")
	}
	if c.HTTP.MaxConns < 16 || c.HTTP.MaxConns > 1<<20 {
		bad("http.max_conns", c.HTTP.MaxConns, "must be from 16 to 1048576")
	}

	if strings.TrimSpace(c.Storage.Dir) == "" {
		bad("storage.dir", c.Storage.Dir, "must name a directory")
	}
	if d := c.Storage.GCInterval.D(); d != 0 && d < time.Second {
		bad("storage.gc_interval", c.Storage.GCInterval, "must be 0 (off) or at least 1s")
	}
	if c.Storage.ReserveMiB < 0 || c.Storage.ReserveMiB > 65536 {
		bad("storage.reserve_mib", c.Storage.ReserveMiB, "must be 0 (automatic) or from 1 to 65536")
	}
	if c.Storage.CacheMiB < 1 || c.Storage.CacheMiB > 4096 {
		bad("storage.cache_mib", c.Storage.CacheMiB, "must be from 1 to 4096")
	}

	if d := c.Bus.Retention.D(); d < 10*time.Minute || d > 24*time.Hour {
		bad("bus.retention", c.Bus.Retention, "must be from 10m to 24h (clients that miss more resync by message_ID gaps)")
	}
	if m := c.Bus.MaxRetainedMiB; m < 8 || m > 1024 {
		bad("bus.max_retained_mib", m, "must be from 8 to 1024 (MiB of memory for notifications kept for reconnecting polls)")
	}
	if d := c.Bus.Replay.D(); d < time.Second || d > c.Bus.Retention.D() {
		bad("bus.replay", c.Bus.Replay, "must be from 1s up to bus.retention")
	}

	if d := c.Orders.Retention.D(); d < time.Minute {
		bad("orders.retention", c.Orders.Retention, "must be at least 1m")
	}
	if d := c.Orders.PurgeInterval.D(); d < time.Second {
		bad("orders.purge_interval", c.Orders.PurgeInterval, "must be at least 1s")
	}

	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", c.Log.Level, "must be one of debug, info, warn, error")
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", c.Log.Format, "must be text or json")
	}

	if c.Discovery.Hostname != "" && !validLabel(c.Discovery.Hostname) {
		bad("discovery.hostname", c.Discovery.Hostname, "must be one DNS label: letters, digits and '-', 1 to 63 characters, no dots")
	}
	if len(c.Discovery.Instance) > 63 {
		bad("discovery.instance", c.Discovery.Instance, "must be at most 63 bytes")
	}
	for i, name := range c.Discovery.Interfaces {
		if strings.TrimSpace(name) == "" {
			bad("discovery.interfaces["+strconv.Itoa(i)+"]", name, "must name a network interface")
		}
	}

	// Above http.max_conns that is allowed: the server lowers the cap to
	// half of max_conns, so a small max_conns works with the default cap.
	if n := c.Security.MaxPollsPerClient; n < 0 || n > 1<<20 {
		bad("security.max_polls_per_client", n, "must be from 0 (no limit) to 1048576")
	}

	if len(c.Security.AllowedNetworks) == 0 {
		bad("security.allowed_networks", c.Security.AllowedNetworks, `must list at least one network; ["0.0.0.0/0", "::/0"] serves every address`)
	}
	for i, n := range c.Security.AllowedNetworks {
		if _, err := netip.ParsePrefix(n); err != nil {
			bad("security.allowed_networks["+strconv.Itoa(i)+"]", n, `must be a CIDR range such as "192.168.1.0/24" or "fd00::/8"`)
		}
	}
	for i, o := range c.Security.AllowedOrigins {
		if !validOrigin(o) {
			bad("security.allowed_origins["+strconv.Itoa(i)+"]", o, `must be an origin: scheme://host[:port] without a path, e.g. "https://shop.example.com" (or "null")`)
		}
	}
	for i, db := range c.Security.AllowedDatabases {
		if db == "" {
			bad("security.allowed_databases["+strconv.Itoa(i)+"]", db, "must name an Odoo database")
		}
	}
	for _, f := range []struct {
		name string
		n    int
	}{{"security.max_databases", c.Security.MaxDatabases}, {"security.max_multi_sessions", c.Security.MaxMultiSessions}, {"security.max_terminals", c.Security.MaxTerminals}} {
		if f.n < 1 || f.n > 1<<20 {
			bad(f.name, f.n, "must be from 1 to 1048576")
		}
	}

	errs = append(errs, c.TLS.validate(c.HTTP.Listen)...)
	errs = append(errs, c.Admin.validate()...)
	errs = append(errs, c.Update.validate()...)

	if len(errs) > 0 {
		return errs
	}
	return nil
}

// ParsedNetworks returns security.allowed_networks as prefixes; entries
// that do not parse are skipped (Validate reports them).
func (s Security) ParsedNetworks() []netip.Prefix {
	out := make([]netip.Prefix, 0, len(s.AllowedNetworks))
	for _, n := range s.AllowedNetworks {
		if p, err := netip.ParsePrefix(n); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// validOrigin reports whether o is a browser origin: http or https, a
// host, no user, path, query or fragment; or the literal "null".
func validOrigin(o string) bool {
	if o == "null" {
		return true
	}
	u, err := url.Parse(strings.TrimSuffix(o, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return false
	}
	return u.User == nil && u.Path == "" && u.RawQuery == "" && u.Fragment == "" && !u.ForceQuery
}

func validLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}
