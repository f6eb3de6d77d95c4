package main

import (
	"net"
	"slices"
	"testing"

	"possync/appliance/config"
)

func TestCertNames(t *testing.T) {
	d := config.Discovery{Hostname: "Till-Box", Instance: "Shop Box"} // the instance is no host label
	got := certNames(d, t.TempDir(), "till-box-2.local.")
	for _, want := range []string{"possync.local", "localhost", "till-box.local", "till-box-2.local"} {
		if !slices.Contains(got, want) {
			t.Errorf("certNames = %v, want %s in it", got, want)
		}
	}
	if slices.ContainsFunc(got, func(s string) bool { return s == "shop box.local" }) {
		t.Errorf("certNames = %v: an instance name with a space is no DNS name", got)
	}
	d.Instance = "shop1"
	if got := certNames(d, t.TempDir(), ""); !slices.Contains(got, "shop1.local") {
		t.Errorf("certNames = %v, want shop1.local (the instance name)", got)
	}
	if ips := boxIPs(); !slices.ContainsFunc(ips, net.IP.IsLoopback) {
		t.Errorf("boxIPs = %v, want the loopback address in it", ips)
	}
}
