package discovery

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// MachineIDPath is where systemd keeps the machine id.
const MachineIDPath = "/etc/machine-id"

// BoxIDFile is the name, inside the data directory, of the file that keeps
// the box id when no machine id can be read.
const BoxIDFile = "box-id"

// idLen is the length in hex digits of a box id; shortIDLen of the part used
// in the default instance name.
const (
	idLen      = 16
	shortIDLen = 6
)

// maxLabel is the longest DNS label, and so the longest instance name.
const maxLabel = 63

// BoxID returns the box's stable id: 16 lower-case hex digits.
//
// It is derived from the machine id at machineIDPath and the MAC address of
// the box's network card (hashed with an application key, as systemd asks
// for, so neither is published). The MAC tells apart two cards cloned from
// one another after their first boot: they share the machine id and the
// data partition, but not the Pi they run in. Without a readable machine
// id it is read from dataDir/box-id, or generated at random and stored
// there. The second result says where the id came from ("machine-id and
// MAC", "machine-id", "box-id file" or "generated"). An error with a
// non-empty id means the generated id could not be stored: it is usable but
// will change on the next start.
func BoxID(machineIDPath, dataDir string) (id, source string, err error) {
	var mac net.HardwareAddr
	if ifcs, err := net.Interfaces(); err == nil {
		mac = hardwareMAC(ifcs)
	}
	return boxID(machineIDPath, dataDir, mac)
}

func boxID(machineIDPath, dataDir string, mac net.HardwareAddr) (id, source string, err error) {
	if b, err := os.ReadFile(machineIDPath); err == nil {
		if id, ok := idFromMachineID(string(b), mac); ok {
			if mac != nil {
				return id, "machine-id and MAC", nil
			}
			return id, "machine-id", nil
		}
	}
	path := filepath.Join(dataDir, BoxIDFile)
	b, readErr := os.ReadFile(path)
	if readErr == nil {
		if id := strings.TrimSpace(string(b)); ValidID(id) {
			return id, "box-id file", nil
		}
	}
	var r [idLen / 2]byte
	_, _ = rand.Read(r[:]) // never fails (crypto/rand panics instead)
	id = hex.EncodeToString(r[:])
	if readErr != nil && !errors.Is(readErr, fs.ErrNotExist) {
		return id, "generated", fmt.Errorf("read box id: %w", readErr)
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return id, "generated", fmt.Errorf("store box id: %w", err)
	}
	if err := os.WriteFile(path, []byte(id+"\n"), 0o644); err != nil {
		return id, "generated", fmt.Errorf("store box id: %w", err)
	}
	return id, "generated", nil
}

// hardwareMAC picks the MAC address that identifies the box's hardware:
// the universally administered (burnt-in) 48-bit address of the
// non-loopback interface first by name (eth0 before wlan0 on a Pi). Locally
// administered addresses (veth, bridges, Docker, randomized Wi-Fi) change
// between boots or machines and are skipped. nil when there is none.
func hardwareMAC(ifcs []net.Interface) net.HardwareAddr {
	var best *net.Interface
	for i := range ifcs {
		ifc := &ifcs[i]
		mac := ifc.HardwareAddr
		if ifc.Flags&net.FlagLoopback != 0 || len(mac) != 6 || mac[0]&0x03 != 0 || bytes.Equal(mac, make([]byte, 6)) {
			continue
		}
		if best == nil || ifc.Name < best.Name {
			best = ifc
		}
	}
	if best == nil {
		return nil
	}
	return best.HardwareAddr
}

// idFromMachineID hashes a machine id (32 hex digits) and, when known, the
// box's MAC into a box id. An empty or malformed machine id (images ship it
// empty until first boot) gives false.
func idFromMachineID(s string, mac net.HardwareAddr) (string, bool) {
	s = strings.TrimSpace(s)
	if len(s) != 32 || !isHex(s) {
		return "", false
	}
	m := hmac.New(sha256.New, []byte(strings.ToLower(s)))
	m.Write([]byte("possync box id"))
	if mac != nil {
		m.Write([]byte(" " + mac.String()))
	}
	return hex.EncodeToString(m.Sum(nil))[:idLen], true
}

// ValidID reports whether s looks like a box id.
func ValidID(s string) bool { return len(s) == idLen && isHex(s) }

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isDigit(c) && (c < 'a' || c > 'f') && (c < 'A' || c > 'F') {
			return false
		}
	}
	return s != ""
}

// ShortID is the part of a box id used in names: its first six digits.
func ShortID(id string) string {
	if len(id) > shortIDLen {
		return id[:shortIDLen]
	}
	return id
}

// InstanceName returns the DNS-SD instance name: configured when set,
// otherwise "possync-<short id>". The result is cut to 63 bytes at a rune
// boundary, the limit of one DNS label.
func InstanceName(configured, id string) string {
	name := strings.TrimSpace(configured)
	if name == "" {
		name = "possync-" + ShortID(id)
	}
	return truncateLabel(name)
}

// fallbackName is the name tried after a conflict: base-<short id>, or
// base-2 when base already ends in the short id.
func fallbackName(base, id string) string {
	suffix := "-" + ShortID(id)
	if strings.HasSuffix(base, suffix) {
		suffix = "-2"
	}
	base = truncateLabel(base)
	for len(base)+len(suffix) > maxLabel {
		_, n := utf8.DecodeLastRuneInString(base)
		base = base[:len(base)-n]
	}
	return base + suffix
}

func truncateLabel(s string) string {
	for len(s) > maxLabel {
		_, n := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-n]
	}
	return s
}

// HostLabel turns a configured host name ("possync", "possync.local",
// "Box 1") into one lower-case DNS label usable in a URL: letters, digits and
// hyphens only. An empty result means the name is unusable.
func HostLabel(s string) string {
	s = strings.TrimSuffix(strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), "."), ".local")
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '-' || r == ' ' || r == '_' || r == '.':
			b.WriteByte('-')
		}
	}
	return strings.Trim(truncateLabel(b.String()), "-")
}
