package httpapi

import (
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"possync/appliance"
	"possync/appliance/engine"
)

// StorageInfo is what the status page and /metrics show about the data
// partition and the store. Zero fields are "not known".
type StorageInfo struct {
	FreeBytes  uint64 // free on the data file system (for unprivileged users)
	TotalBytes uint64 // size of the data file system
	StoreBytes uint64 // the store's files (LSM + value log), as Badger last measured them
	GCRuns     uint64 // value-log GC passes since start
	GCRewrites uint64 // value-log files rewritten by GC since start
	// Transactions and Commits: store transactions synced since start, and
	// the commits made durable in them (overlapping commits share one).
	Transactions, Commits uint64
}

// Addresses is how terminals reach the box.
type Addresses struct {
	Host string       // the .local name answered over mDNS, e.g. "possync.local"; "" = none
	IPs  []netip.Addr // LAN addresses of the box
}

// statusDoc is GET /status.json, field by field as docs/status.md
// documents it; the HTML page renders the same document.
type statusDoc struct {
	Status              string            `json:"status"` // "ok", "degraded" or "unhealthy" (as /healthz)
	Reason              string            `json:"reason"` // why not ok; "" when ok
	Version             string            `json:"version"`
	Commit              string            `json:"commit"`
	UptimeSeconds       int64             `json:"uptime_seconds"`
	OnlineWindowSeconds int64             `json:"online_window_seconds"`
	Disk                *diskDoc          `json:"disk"` // null when not known
	URLs                []urlDoc          `json:"urls"`
	CACert              string            `json:"ca_cert"` // "/ca.crt" when the box has a local CA, else ""
	MultiSessions       []sessionDoc      `json:"multi_sessions"`
	Unassigned          []terminalDoc     `json:"unassigned_terminals"`
	Warnings            []warningDoc      `json:"warnings"`
	Totals              totalsDoc         `json:"totals"`
	Databases           []string          `json:"databases"`         // databases with a multi-session, to copy into security.allowed_databases
	AllowedDatabases    []string          `json:"allowed_databases"` // security.allowed_databases; null = any
	Limits              limitsDoc         `json:"limits"`
	Info                map[string]string `json:"info"`
	Updates             *updatesDoc       `json:"updates"` // null when the server reports none
}

type diskDoc struct {
	DataFreeBytes  uint64 `json:"data_free_bytes"`
	DataTotalBytes uint64 `json:"data_total_bytes"`
	StoreBytes     uint64 `json:"store_bytes"`
}

type urlDoc struct {
	URL  string `json:"url"`
	Kind string `json:"kind"` // "local" (.local name), "address" (an IP address) or "page" (as this page was opened)
}

type sessionDoc struct {
	DB              string        `json:"db"`
	ID              int64         `json:"id"`
	Run             int64         `json:"run"`
	LastOrderNumber int64         `json:"last_order_number"`
	OpenOrders      int64         `json:"open_orders"`
	TerminalsOnline int           `json:"terminals_online"`
	Terminals       []terminalDoc `json:"terminals"`
}

type terminalDoc struct {
	DB                   string `json:"db"`
	POSID                int64  `json:"pos_id"`
	UserID               *int64 `json:"user_id"` // null = not known this run
	Online               bool   `json:"online"`
	PollsWaiting         int    `json:"polls_waiting"`
	LastPollAgeSeconds   *int64 `json:"last_poll_age_seconds"`   // null = no poll since start
	LastUpdateAgeSeconds *int64 `json:"last_update_age_seconds"` // null = no update since start
}

type warningDoc struct {
	Kind       string `json:"kind"`
	Source     string `json:"source"`
	Message    string `json:"message"`
	Count      int    `json:"count"`
	AgeSeconds int64  `json:"age_seconds"`
	At         string `json:"at"` // wall clock, RFC 3339; wrong before the box has NTP time
}

// limitsDoc is the state the box tracks against its security.max_* bounds.
type limitsDoc struct {
	Databases        int `json:"databases"`
	MaxDatabases     int `json:"max_databases"`
	MultiSessions    int `json:"multi_sessions"`
	MaxMultiSessions int `json:"max_multi_sessions"`
	Terminals        int `json:"terminals"`
	MaxTerminals     int `json:"max_terminals"`
}

type totalsDoc struct {
	UpdatesAccepted   uint64 `json:"updates_accepted"`
	RevisionConflicts uint64 `json:"revision_conflicts"`
	Duplicates        uint64 `json:"duplicates"`
	StoreErrors       uint64 `json:"store_errors"`
	PollsWaiting      int    `json:"polls_waiting"`
	LastBusID         uint64 `json:"last_bus_id"`
}

// buildStatus gathers the status document. host is the scheme and Host
// header the page was requested with (pageOrigin; "" = none).
func (s *Server) buildStatus(host string) statusDoc {
	state, herr := s.healthState()
	st := s.eng.Stats()
	act := s.eng.Status(s.opts.OnlineWindow)
	d := statusDoc{
		Status:              state,
		Version:             appliance.Version,
		Commit:              appliance.BuildCommit(),
		UptimeSeconds:       int64(time.Since(s.started).Seconds()),
		OnlineWindowSeconds: int64(s.onlineWindow().Seconds()),
		URLs:                s.urls(host),
		CACert:              s.caCertPath(),
		MultiSessions:       []sessionDoc{},
		Unassigned:          []terminalDoc{},
		Warnings:            []warningDoc{},
		Info:                map[string]string{},
		Totals: totalsDoc{UpdatesAccepted: st.Accepted, RevisionConflicts: st.RevisionErrors, Duplicates: st.Duplicates,
			StoreErrors: st.StoreErrors, PollsWaiting: st.Bus.Waiting, LastBusID: st.Bus.Newest},
	}
	if herr != nil {
		d.Reason = herr.Error()
	}
	lim := s.eng.Limits()
	d.Limits = limitsDoc{Databases: lim.Databases, MaxDatabases: lim.MaxDatabases, MultiSessions: lim.MultiSessions,
		MaxMultiSessions: lim.MaxMultiSessions, Terminals: lim.Terminals, MaxTerminals: lim.MaxTerminals}
	d.Updates = s.updates()
	d.Databases = s.eng.Databases()
	d.AllowedDatabases = s.eng.AllowedDatabases()
	if s.opts.Storage != nil {
		si := s.opts.Storage()
		d.Disk = &diskDoc{DataFreeBytes: si.FreeBytes, DataTotalBytes: si.TotalBytes, StoreBytes: si.StoreBytes}
	}
	if s.opts.Info != nil {
		for k, v := range s.opts.Info() {
			d.Info[k] = v
		}
	}
	for _, ss := range act.Sessions {
		sd := sessionDoc{DB: ss.Key.DB, ID: ss.Key.ID, Run: ss.Run, LastOrderNumber: ss.LastOrder, OpenOrders: ss.OpenOrders,
			Terminals: make([]terminalDoc, 0, len(ss.Terminals))}
		for _, t := range ss.Terminals {
			if t.Online {
				sd.TerminalsOnline++
			}
			sd.Terminals = append(sd.Terminals, terminalFrom(t))
		}
		d.MultiSessions = append(d.MultiSessions, sd)
	}
	for _, t := range act.Unassigned {
		d.Unassigned = append(d.Unassigned, terminalFrom(t))
	}
	now := time.Now()
	for _, w := range act.Warnings {
		d.Warnings = append(d.Warnings, warningDoc{Kind: w.Kind, Source: w.Source, Message: w.Message, Count: w.Count,
			AgeSeconds: int64(max(now.Sub(w.At), 0).Seconds()), At: w.At.UTC().Format(time.RFC3339)})
	}
	return d
}

func terminalFrom(t engine.TerminalStatus) terminalDoc {
	td := terminalDoc{DB: t.DB, POSID: t.POSID, Online: t.Online, PollsWaiting: t.Polling,
		LastPollAgeSeconds: ageSeconds(t.LastPoll), LastUpdateAgeSeconds: ageSeconds(t.LastUpdate)}
	if t.UserID != 0 {
		u := t.UserID
		td.UserID = &u
	}
	return td
}

func ageSeconds(d time.Duration) *int64 {
	if d < 0 {
		return nil
	}
	s := int64(d.Seconds())
	return &s
}

func (s *Server) onlineWindow() time.Duration {
	if s.opts.OnlineWindow > 0 {
		return s.opts.OnlineWindow
	}
	return engine.OnlineWindow
}

// urls lists what to type into Odoo's Sync Server field: the .local name,
// then each LAN address, then the address this page was opened with when it
// is none of those; each over http and, when HTTPS is on, https.
func (s *Server) urls(host string) []urlDoc {
	port := s.Port()
	var out []urlDoc
	add := func(u, kind string) {
		if !slices.ContainsFunc(out, func(x urlDoc) bool { return x.URL == u }) {
			out = append(out, urlDoc{URL: u, Kind: kind})
		}
		if s.tlsLn == nil || kind == "page" {
			return
		}
		h, _, _ := net.SplitHostPort(strings.TrimPrefix(u, "http://"))
		if hs := "https://" + net.JoinHostPort(h, strconv.Itoa(s.tlsLn.Addr().(*net.TCPAddr).Port)); !slices.ContainsFunc(out, func(x urlDoc) bool { return x.URL == hs }) {
			out = append(out, urlDoc{URL: hs, Kind: kind})
		}
	}
	var a Addresses
	if s.opts.Addresses != nil {
		a = s.opts.Addresses()
	} else if ip, ok := netip.AddrFromSlice(s.ln.Addr().(*net.TCPAddr).IP); ok && !ip.IsUnspecified() {
		a.IPs = []netip.Addr{ip.Unmap()}
	}
	if a.Host != "" {
		add("http://"+net.JoinHostPort(a.Host, strconv.Itoa(port)), "local")
	}
	for _, ip := range a.IPs {
		if ip.Is6() && ip.IsLinkLocalUnicast() {
			continue // needs a zone; no browser takes it in a URL
		}
		add("http://"+net.JoinHostPort(ip.String(), strconv.Itoa(port)), "address")
	}
	if host != "" {
		add(host, "page")
	}
	return out
}
