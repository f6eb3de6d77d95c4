package main

import (
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"possync/appliance/httpapi"
	"possync/discovery"
	"possync/storage"
)

// storageInfo feeds the status page and /metrics from the store.
func storageInfo(store *storage.DB, logger *slog.Logger) func() httpapi.StorageInfo {
	var warned atomic.Bool
	return func() httpapi.StorageInfo {
		st, err := store.Stats()
		if err != nil {
			if !warned.Swap(true) {
				logger.Warn("store stats for the status page", "err", err)
			}
			return httpapi.StorageInfo{}
		}
		return httpapi.StorageInfo{FreeBytes: st.FreeBytes, TotalBytes: st.TotalBytes,
			StoreBytes: st.DirBytes, GCRuns: st.GCRuns, GCRewrites: st.GCRewrites,
			Transactions: st.Transactions, Commits: st.Commits}
	}
}

// lanCacheFor bounds how often the interface list is read for the status
// page when mDNS is off.
const lanCacheFor = 10 * time.Second

// boxAddresses tells the status page what to type into Odoo: the listen
// address when it names one, else the advertiser's .local name and
// addresses, else the LAN addresses of the interfaces mDNS would use.
type boxAddresses struct {
	listen     string
	interfaces []string
	adv        atomic.Pointer[discovery.Advertiser]

	// mu guards the fields that follow.
	mu    sync.Mutex
	lan   []netip.Addr // nil when the interfaces cannot be read
	lanAt time.Time
}

func (b *boxAddresses) setAdvertiser(a *discovery.Advertiser) { b.adv.Store(a) }

func (b *boxAddresses) get() httpapi.Addresses {
	if host, _, err := net.SplitHostPort(b.listen); err == nil && host != "" {
		if ip, err := netip.ParseAddr(host); err == nil && !ip.IsUnspecified() {
			return httpapi.Addresses{IPs: []netip.Addr{ip}}
		}
	}
	if a := b.adv.Load(); a != nil {
		host, ips := a.Announced()
		return httpapi.Addresses{Host: host, IPs: ips}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.lanAt.IsZero() || time.Since(b.lanAt) > lanCacheFor {
		b.lan, _ = discovery.LANAddrs(b.interfaces)
		b.lanAt = time.Now()
	}
	return httpapi.Addresses{IPs: b.lan}
}
