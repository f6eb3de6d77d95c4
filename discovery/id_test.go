package discovery

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

const testMachineID = "3d1219c7c4c5404aaa1f6d2a48adfda4"

func TestBoxIDFromMachineID(t *testing.T) {
	dir := t.TempDir()
	mid := filepath.Join(dir, "machine-id")
	if err := os.WriteFile(mid, []byte(testMachineID+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	id, source, err := BoxID(mid, filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	if source != "machine-id" && source != "machine-id and MAC" || !ValidID(id) {
		t.Fatalf("BoxID = %q from %q, want a valid id from machine-id", id, source)
	}
	if strings.Contains(testMachineID, id) {
		t.Errorf("BoxID = %q reveals the machine id", id)
	}
	again, _, _ := BoxID(mid, filepath.Join(dir, "data"))
	if again != id {
		t.Errorf("BoxID changed across calls: %q then %q", id, again)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", BoxIDFile)); !os.IsNotExist(err) {
		t.Errorf("box-id file written although the machine id was readable (stat err %v)", err)
	}
}

// TestBoxIDClonedCard: a card cloned after its first boot keeps the
// machine id (and the data partition), so the MAC of the Pi it runs in must
// make the id differ; the same card in the same Pi keeps its id.
func TestBoxIDClonedCard(t *testing.T) {
	dir := t.TempDir()
	mid := filepath.Join(dir, "machine-id")
	if err := os.WriteFile(mid, []byte(testMachineID+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data") // shared, as a cloned data partition is
	pi1, _ := net.ParseMAC("dc:a6:32:01:02:03")
	pi2, _ := net.ParseMAC("dc:a6:32:01:02:04")
	id1, src1, err1 := boxID(mid, data, pi1)
	id2, src2, err2 := boxID(mid, data, pi2)
	again, _, _ := boxID(mid, data, pi1)
	if err1 != nil || err2 != nil || src1 != "machine-id and MAC" || src2 != src1 || !ValidID(id1) || !ValidID(id2) {
		t.Fatalf("boxID = %q %q %v, %q %q %v; want valid ids from machine-id and MAC", id1, src1, err1, id2, src2, err2)
	}
	if id1 == id2 {
		t.Errorf("cloned card in another Pi: boxID = %q in both, want different ids", id1)
	}
	if again != id1 {
		t.Errorf("same card, same Pi: boxID = %q then %q, want it stable", id1, again)
	}
	if ShortID(id1) == ShortID(id2) {
		t.Errorf("short ids %q and %q are equal, so the default instance names would be too", ShortID(id1), ShortID(id2))
	}
	noMAC, src, _ := boxID(mid, data, nil)
	if old, _ := idFromMachineID(testMachineID, nil); noMAC != old || src != "machine-id" || noMAC == id1 {
		t.Errorf("without a MAC: boxID = %q from %q, want %q from machine-id (the id of earlier versions)", noMAC, src, old)
	}
}

func TestHardwareMAC(t *testing.T) {
	mac := func(s string) net.HardwareAddr {
		m, err := net.ParseMAC(s)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	up := net.FlagUp | net.FlagMulticast
	tests := []struct {
		name string
		ifcs []net.Interface
		want string
	}{
		{"none", nil, ""},
		{"loopback only", []net.Interface{{Name: "lo", Flags: net.FlagLoopback}}, ""},
		{"pi ethernet and wifi", []net.Interface{
			{Name: "wlan0", Flags: up, HardwareAddr: mac("dc:a6:32:00:00:02")},
			{Name: "eth0", Flags: up, HardwareAddr: mac("dc:a6:32:00:00:01")},
		}, "dc:a6:32:00:00:01"},
		{"eth0 down still counts", []net.Interface{
			{Name: "eth0", HardwareAddr: mac("dc:a6:32:00:00:01")},
			{Name: "wlan0", Flags: up, HardwareAddr: mac("dc:a6:32:00:00:02")},
		}, "dc:a6:32:00:00:01"},
		{"locally administered skipped", []net.Interface{
			{Name: "docker0", Flags: up, HardwareAddr: mac("02:42:ac:11:00:02")},
			{Name: "veth1", Flags: up, HardwareAddr: mac("2e:11:22:33:44:55")},
			{Name: "wlan0", Flags: up, HardwareAddr: mac("b8:27:eb:00:00:07")},
		}, "b8:27:eb:00:00:07"},
		{"only virtual", []net.Interface{{Name: "br0", Flags: up, HardwareAddr: mac("02:00:00:00:00:01")}}, ""},
		{"zero and non-ethernet skipped", []net.Interface{
			{Name: "eth0", Flags: up, HardwareAddr: mac("00:00:00:00:00:00")},
			{Name: "ib0", Flags: up, HardwareAddr: mac("00:00:00:00:00:00:00:00")},
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hardwareMAC(tt.ifcs).String(); got != tt.want {
				t.Errorf("hardwareMAC = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestBoxIDGeneratedAndStored(t *testing.T) {
	for _, machineID := range []string{"", "uninitialized\n", "not-a-machine-id"} {
		t.Run(machineID, func(t *testing.T) {
			dir := t.TempDir()
			mid := filepath.Join(dir, "machine-id") // images ship it empty until first boot
			if err := os.WriteFile(mid, []byte(machineID), 0o644); err != nil {
				t.Fatal(err)
			}
			data := filepath.Join(dir, "data")
			id, source, err := BoxID(mid, data)
			if err != nil || source != "generated" || !ValidID(id) {
				t.Fatalf("BoxID = %q, %q, %v; want a generated valid id", id, source, err)
			}
			again, source, err := BoxID(mid, data)
			if err != nil || source != "box-id file" || again != id {
				t.Fatalf("second BoxID = %q, %q, %v; want %q from the box-id file", again, source, err, id)
			}
		})
	}
}

func TestBoxIDUnwritableDataDir(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	id, _, err := BoxID(filepath.Join(dir, "missing"), filepath.Join(file, "data"))
	if err == nil || !ValidID(id) {
		t.Fatalf("BoxID = %q, %v; want a usable id and an error about storing it", id, err)
	}
}

func TestInstanceName(t *testing.T) {
	long := strings.Repeat("é", 40) // 80 bytes
	tests := []struct {
		name, configured, id, want string
	}{
		{"default", "", "4bf67aa85ae068d0", "possync-4bf67a"},
		{"configured", "Caisse principale", "4bf67aa85ae068d0", "Caisse principale"},
		{"trimmed", "  Bar  ", "4bf67aa85ae068d0", "Bar"},
		{"cut to 63 bytes on a rune", long, "4bf67aa85ae068d0", strings.Repeat("é", 31)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := InstanceName(tt.configured, tt.id)
			if got != tt.want {
				t.Errorf("InstanceName(%q, %q) = %q, want %q", tt.configured, tt.id, got, tt.want)
			}
			if len(got) > 63 || !utf8.ValidString(got) {
				t.Errorf("InstanceName(%q) = %q: not one valid label", tt.configured, got)
			}
		})
	}
}

func TestFallbackName(t *testing.T) {
	tests := []struct{ base, want string }{
		{"possync", "possync-4bf67a"},
		{"possync-4bf67a", "possync-4bf67a-2"},
		{strings.Repeat("x", 63), strings.Repeat("x", 56) + "-4bf67a"},
	}
	for _, tt := range tests {
		if got := fallbackName(tt.base, "4bf67aa85ae068d0"); got != tt.want {
			t.Errorf("fallbackName(%q) = %q, want %q", tt.base, got, tt.want)
		}
	}
}

func TestHostLabel(t *testing.T) {
	tests := []struct{ in, want string }{
		{"possync", "possync"},
		{"PossSync.local.", "posssync"},
		{"possync.local", "possync"},
		{"Box 1_bar", "box-1-bar"},
		{"--café--", "caf"},
		{"", ""},
		{"***", ""},
	}
	for _, tt := range tests {
		if got := HostLabel(tt.in); got != tt.want {
			t.Errorf("HostLabel(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
