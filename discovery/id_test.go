package discovery

import (
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
	if source != "machine-id" || !ValidID(id) {
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
