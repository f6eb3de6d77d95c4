package discovery

import (
	"net"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/grandcat/zeroconf"
)

func TestBoxFromEntry(t *testing.T) {
	// As zeroconf reports it: names and TXT in miekg/dns presentation form.
	e := zeroconf.NewServiceEntry(`Caf\195\169\ 1`, ServiceType, "local.")
	e.HostName = "possync.local."
	e.Port = 8079
	e.Text = []string{"version=1.2.0", "id=4bf67aa85ae068d0", "path=/", `api=pos_multi_session_sync/12`, "scheme=http", `note=a\"b`}
	e.AddrIPv6 = []net.IP{net.ParseIP("fe80::1"), net.ParseIP("2001:db8::5")}
	e.AddrIPv4 = []net.IP{net.ParseIP("192.168.1.5"), net.ParseIP("192.168.1.5")}

	got := boxFromEntry(e)
	want := Box{
		Instance: "Café 1",
		Host:     "possync.local",
		Port:     8079,
		Addrs:    addrs("192.168.1.5", "fe80::1", "2001:db8::5"),
		TXT: TXT{Version: "1.2.0", ID: "4bf67aa85ae068d0", Path: "/", API: API, Scheme: "http",
			Extra: map[string]string{"note": `a"b`}},
	}
	if diff := cmp.Diff(want, got, addrCmp); diff != "" {
		t.Errorf("boxFromEntry (-want +got):\n%s", diff)
	}
}

func TestBoxURLs(t *testing.T) {
	tests := []struct {
		name string
		box  Box
		want []string
	}{
		{
			name: "IPv4 first, then the .local name, then routable IPv6",
			box:  Box{Host: "possync.local", Port: 8079, Addrs: addrs("192.168.1.5", "fe80::1", "2001:db8::5"), TXT: TXT{Path: "/", Scheme: "http"}},
			want: []string{"http://192.168.1.5:8079", "http://possync.local:8079", "http://[2001:db8::5]:8079"},
		},
		{
			name: "scheme and path from TXT",
			box:  Box{Host: "box.local", Port: 8443, Addrs: addrs("10.0.0.2"), TXT: TXT{Path: "sync", Scheme: "https"}},
			want: []string{"https://10.0.0.2:8443/sync", "https://box.local:8443/sync"},
		},
		{
			name: "no TXT: http",
			box:  Box{Port: 8079, Addrs: addrs("10.0.0.2")},
			want: []string{"http://10.0.0.2:8079"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.box.URLs()); diff != "" {
				t.Errorf("URLs (-want +got):\n%s", diff)
			}
		})
	}
}
