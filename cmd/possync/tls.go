package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"possync/appliance/config"
	"possync/appliance/tlscert"
	"possync/discovery"
)

// certRefresh is how often the box's names and addresses are compared
// with those of the automatic certificate.
const certRefresh = 30 * time.Second

// boxTLS is HTTPS as configured by [tls]: a tls.Config for httpapi, the
// local CA (auto only) and what keeps the certificate current.
type boxTLS struct {
	config *tls.Config
	auto   *tlscert.Auto // nil with tls.cert_file
	names  func() []string
	log    *slog.Logger
}

// openTLS loads or creates what [tls] asks for; nil, nil when HTTPS is off.
// announced returns the advertiser's .local host name ("" before mDNS
// runs); it joins the certificate's names at the next refresh.
func openTLS(c config.Config, dataDir string, announced func() string, logger *slog.Logger) (*boxTLS, error) {
	if c.TLS.Listen == "" {
		return nil, nil
	}
	log := logger.With("component", "tls")
	if !c.TLS.Auto {
		pair, err := tlscert.LoadFiles(c.TLS.CertFile, c.TLS.KeyFile, time.Now())
		if errors.Is(err, tlscert.ErrNotYetValid) {
			log.Warn("HTTPS certificate not yet valid by this box's clock", "err", err)
		} else if err != nil {
			return nil, err
		}
		return &boxTLS{config: &tls.Config{Certificates: []tls.Certificate{*pair}}, log: log}, nil
	}
	names := func() []string { return certNames(c.Discovery, dataDir, announced()) }
	auto, err := tlscert.NewAuto(tlscert.Dir(dataDir), certCAName(c.Discovery, dataDir), names(), boxIPs())
	if err != nil {
		return nil, fmt.Errorf("tls.auto: local CA in %s: %w", tlscert.Dir(dataDir), err)
	}
	dns, ips := auto.Names()
	log.Info("HTTPS certificate from the local CA", "ca_sha256", auto.CA().Fingerprint(), "names", strings.Join(dns, ","), "ips", strings.Join(ips, ","))
	return &boxTLS{config: &tls.Config{GetCertificate: auto.GetCertificate}, auto: auto, names: names, log: log}, nil
}

// tlsConfig is the config for httpapi.Options.TLSConfig: nil = HTTPS off.
func (b *boxTLS) tlsConfig() *tls.Config {
	if b == nil {
		return nil
	}
	return b.config
}

// announcedHost is the .local name mDNS announces, "" before it runs.
func (b *boxAddresses) announcedHost() string {
	if a := b.adv.Load(); a != nil {
		host, _ := a.Announced()
		return host
	}
	return ""
}

// addrString is a's text, "off" for nil.
func addrString(a net.Addr) string {
	if a == nil {
		return "off"
	}
	return a.String()
}

// caPEM returns the local CA certificate, or nil without one.
func (b *boxTLS) caPEM() []byte {
	if b == nil || b.auto == nil {
		return nil
	}
	return b.auto.CA().PEM
}

// run re-issues the automatic certificate when the box's names or
// addresses change (a new DHCP lease, a second interface), until ctx ends.
func (b *boxTLS) run(ctx context.Context) {
	if b == nil || b.auto == nil {
		return
	}
	t := time.NewTicker(certRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		changed, err := b.auto.Update(b.names(), boxIPs())
		switch {
		case err != nil:
			b.log.Warn("re-issue HTTPS certificate; keeping the current one", "err", err)
		case changed:
			dns, ips := b.auto.Names()
			b.log.Info("HTTPS certificate re-issued for new names or addresses", "names", strings.Join(dns, ","), "ips", strings.Join(ips, ","))
		}
	}
}

// certNames are the DNS names of the box: possync.local, the configured
// host name, the instance name (when it is a valid host label), the name
// mDNS announces (after a conflict rename) and localhost.
func certNames(d config.Discovery, dataDir, announced string) []string {
	names := []string{"possync.local", "localhost"}
	if d.Hostname != "" {
		names = append(names, strings.ToLower(d.Hostname)+".local")
	}
	if id, _, _ := discovery.BoxID(discovery.MachineIDPath, dataDir); id != "" {
		if inst := strings.ToLower(discovery.InstanceName(d.Instance, id)); hostLabel(inst) {
			names = append(names, inst+".local")
		}
	}
	if announced != "" {
		names = append(names, strings.ToLower(strings.TrimSuffix(announced, ".")))
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// certCAName names the CA after the instance, so two boxes' CAs differ in
// a till's certificate list.
func certCAName(d config.Discovery, dataDir string) string {
	if id, _, _ := discovery.BoxID(discovery.MachineIDPath, dataDir); id != "" {
		return discovery.InstanceName(d.Instance, id)
	}
	return "possync"
}

func hostLabel(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// boxIPs is every address of the box, loopback included; IPv6 link-local
// addresses are left out (a URL would need a zone).
func boxIPs() []net.IP {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	}
	var ips []net.IP
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || (ipn.IP.To4() == nil && ipn.IP.IsLinkLocalUnicast()) {
			continue
		}
		ips = append(ips, ipn.IP)
	}
	return ips
}

// checkTLS reports what would stop HTTPS from starting, without creating
// anything: own files that are missing, do not match or expired; a local
// CA that exists but cannot be read.
func checkTLS(c config.Config) error {
	if c.TLS.Listen == "" {
		return nil
	}
	if !c.TLS.Auto {
		_, err := tlscert.LoadFiles(c.TLS.CertFile, c.TLS.KeyFile, time.Now())
		if errors.Is(err, tlscert.ErrNotYetValid) {
			return nil // served; serve warns (the clock may be behind)
		}
		return err
	}
	dir := tlscert.Dir(c.Storage.Dir)
	_, cerr := os.Stat(filepath.Join(dir, tlscert.CAFile))
	_, kerr := os.Stat(filepath.Join(dir, tlscert.CAKeyFile))
	if errors.Is(cerr, fs.ErrNotExist) && errors.Is(kerr, fs.ErrNotExist) {
		return nil // made at the first start
	}
	if _, err := tlscert.LoadOrCreateCA(dir, ""); err != nil {
		return fmt.Errorf("tls.auto: local CA in %s: %w", dir, err)
	}
	return nil
}
