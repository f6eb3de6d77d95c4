package httpapi_test

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"possync/appliance/apptest"
)

// A shop that narrows security.allowed_networks to its LAN (without
// loopback) must still let possync boot-check, on the box itself, ask
// GET /healthz?write=1 over 127.0.0.1: otherwise every update is marked
// bad and rolled back. Only /healthz is served to such a connection from
// the machine itself (source address = destination address); other
// routes, and other loopback addresses, are refused as before.
func TestHealthzFromTheBoxItselfOutsideAllowedNetworks(t *testing.T) {
	srv := newServer(t, apptest.Options{AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("192.168.0.0/16")}})
	self, other := tcpFrom("127.0.0.1"), tcpFrom("127.0.0.2")
	if a := do(t, self, "GET", srv.URL+"/healthz?write=1", "", nil); a.status != http.StatusOK || !strings.Contains(string(a.body), `"write_committed":true`) {
		t.Fatalf("boot-check's probe from 127.0.0.1 = %d %s, want 200 with a committed write", a.status, a.body)
	}
	if a := do(t, self, "GET", srv.URL+"/status.json", "", nil); a.status != http.StatusForbidden {
		t.Errorf("/status.json from 127.0.0.1 = %d, want 403 (only /healthz is served to the box itself)", a.status)
	}
	if a := do(t, self, "POST", srv.URL+"/pos_multi_session_sync/update", syncAllBody("shop", 1, 1), nil); a.status != http.StatusForbidden {
		t.Errorf("sync from 127.0.0.1 = %d, want 403", a.status)
	}
	if a := do(t, other, "GET", srv.URL+"/healthz", "", nil); a.status != http.StatusForbidden {
		t.Errorf("/healthz from 127.0.0.2 to 127.0.0.1 = %d, want 403", a.status)
	}
}
