package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"possync/appliance/apptest"
	"possync/storage"
)

// GET /healthz?write=1 commits a probe write to the real store and says
// so (write_committed), which possync boot-check requires before it marks
// a new release good; plain /healthz writes nothing. The store with the
// probe record opens and loads as before.
func TestHealthzWriteProbe(t *testing.T) {
	dir := t.TempDir()
	srv := newServer(t, apptest.Options{Dir: dir})
	get := func(q string) (int, map[string]any) {
		resp, err := http.Get(srv.URL + "/healthz" + q)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %s", q, b)
		}
		return resp.StatusCode, m
	}
	if code, m := get(""); code != 200 || m["write_committed"] != false {
		t.Fatalf("/healthz = %d %v", code, m)
	}
	if code, m := get("?write=1"); code != 200 || m["write_committed"] != true || m["status"] != "ok" {
		t.Fatalf("/healthz?write=1 = %d %v", code, m)
	}
	srv.Close()
	db, err := storage.Open(dir, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Load(context.Background()); err != nil {
		t.Fatalf("load after a probe write: %v", err)
	}
	// The write went through the store: on a closed store it fails.
	db.Close()
	if err := db.ProbeWrite(context.Background()); err == nil {
		t.Fatal("probe write on a closed store succeeded")
	}
}

// A box whose http.listen names its LAN address: boot-check asks from that
// address, which counts as this machine for the write probe.
func TestHealthzWriteProbeFromOwnLANAddress(t *testing.T) {
	var lan string
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() {
			lan = ipn.IP.String()
			break
		}
	}
	if lan == "" {
		t.Skip("SKIPPED, NOT RUN: this machine has no non-loopback IPv4 address")
	}
	srv := newServer(t, apptest.Options{Host: lan, AllowedNetworks: []netip.Prefix{netip.PrefixFrom(netip.MustParseAddr(lan), 32)}})
	resp, err := http.Get(srv.URL + "/healthz?write=1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"write_committed":true`) {
		t.Fatalf("from %s: %d %s", lan, resp.StatusCode, b)
	}
}
