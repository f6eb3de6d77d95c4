package appliance_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencyDirection enforces the one-way imports described in
// ARCHITECTURE.md: the engine never sees fasthttp, Badger, mDNS or the
// metrics exposition (it offers an Observer and snapshots; httpapi renders
// them); storage and discovery never import the HTTP layer or the engine;
// nothing imports cmd.
func TestDependencyDirection(t *testing.T) {
	rules := []struct {
		pkg       string
		forbidden []string
	}{
		{"possync/appliance", []string{"possync/", "github.com/"}},
		{"possync/appliance/engine", []string{"github.com/valyala/fasthttp", "github.com/dgraph-io/badger", "github.com/grandcat/zeroconf", "github.com/miekg/dns", "possync/storage", "possync/appliance/httpapi", "possync/discovery", "github.com/VictoriaMetrics/metrics", "github.com/yeqown/go-qrcode"}},
		{"possync/appliance/config", []string{"possync/appliance/engine", "possync/appliance/httpapi", "possync/storage", "possync/discovery"}},
		{"possync/appliance/httpapi", []string{"github.com/dgraph-io/badger", "possync/storage", "possync/discovery", "github.com/grandcat/zeroconf"}},
		{"possync/appliance/tlscert", []string{"github.com/valyala/fasthttp", "github.com/dgraph-io/badger", "github.com/grandcat/zeroconf", "github.com/miekg/dns", "possync/storage", "possync/appliance/httpapi", "possync/appliance/engine", "possync/discovery", "possync/appliance/config"}},
		{"possync/appliance/update", []string{"github.com/valyala/fasthttp", "possync/appliance/httpapi", "possync/appliance/engine", "possync/storage", "possync/discovery", "github.com/dgraph-io/badger", "possync/appliance/config"}},
		{"possync/storage", []string{"github.com/valyala/fasthttp", "possync/appliance/httpapi", "possync/appliance/engine", "possync/discovery", "github.com/VictoriaMetrics/metrics"}},
		{"possync/discovery", []string{"github.com/valyala/fasthttp", "possync/appliance/httpapi", "possync/appliance/engine", "possync/storage", "github.com/dgraph-io/badger", "github.com/VictoriaMetrics/metrics"}},
	}
	for _, r := range rules {
		out, err := exec.Command("go", "list", "-deps", r.pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", r.pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if dep == r.pkg || (r.pkg == "possync/appliance" && dep == "possync/appliance") {
				continue
			}
			if strings.HasPrefix(dep, "possync/cmd") {
				t.Errorf("%s depends on %s: nothing may import cmd", r.pkg, dep)
			}
			for _, f := range r.forbidden {
				if strings.HasPrefix(dep, f) && !(f == "possync/" && dep == r.pkg) {
					t.Errorf("%s depends on %s (forbidden prefix %s)", r.pkg, dep, f)
				}
			}
		}
	}
}
