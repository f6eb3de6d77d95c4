package update

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// RaucStatus is `rauc status --detailed --output-format=json` (rauc 1.8).
type RaucStatus struct {
	Compatible string
	Booted     string // bootname of the booted slot, "A" or "B"
	Primary    string // name of the slot booted next ("rootfs.1"), "" when not known
	Slots      []Slot // sorted by name
}

// Slot is one slot as rauc reports it, and as slots.json keeps it.
type Slot struct {
	Name       string    `json:"name"`        // "rootfs.0"
	Bootname   string    `json:"bootname"`    // "A"
	State      string    `json:"state"`       // "booted", "inactive", "active"
	BootStatus string    `json:"boot_status"` // "good" or "bad" (U-Boot: attempts left, and in BOOT_ORDER)
	Primary    bool      `json:"primary"`     // the slot U-Boot tries first
	Version    string    `json:"version"`     // the installed bundle's version; "" = not known (never installed by rauc)
	Installed  time.Time `json:"installed,omitzero"`
}

type raucStatusJSON struct {
	Compatible  string                       `json:"compatible"`
	Booted      string                       `json:"booted"`
	BootPrimary *string                      `json:"boot_primary"`
	Slots       []map[string]json.RawMessage `json:"slots"`
}

type raucSlotJSON struct {
	Bootname   string `json:"bootname"`
	State      string `json:"state"`
	BootStatus string `json:"boot_status"`
	SlotStatus *struct {
		Bundle *struct {
			Version string `json:"version"`
		} `json:"bundle"`
		Installed *struct {
			Timestamp string `json:"timestamp"`
		} `json:"installed"`
	} `json:"slot_status"`
}

// ParseRaucStatus decodes rauc's JSON status.
func ParseRaucStatus(data []byte) (RaucStatus, error) {
	var raw raucStatusJSON
	if err := json.Unmarshal(data, &raw); err != nil {
		return RaucStatus{}, fmt.Errorf("rauc status output is not JSON: %w", err)
	}
	st := RaucStatus{Compatible: raw.Compatible, Booted: raw.Booted}
	if raw.BootPrimary != nil {
		st.Primary = *raw.BootPrimary
	}
	for _, m := range raw.Slots {
		for name, body := range m {
			var s raucSlotJSON
			if err := json.Unmarshal(body, &s); err != nil {
				return RaucStatus{}, fmt.Errorf("rauc status: slot %s: %w", name, err)
			}
			slot := Slot{Name: name, Bootname: s.Bootname, State: s.State, BootStatus: s.BootStatus, Primary: name == st.Primary}
			if ss := s.SlotStatus; ss != nil {
				if ss.Bundle != nil {
					slot.Version = ss.Bundle.Version
				}
				if ss.Installed != nil {
					slot.Installed, _ = time.Parse(time.RFC3339, ss.Installed.Timestamp)
				}
			}
			st.Slots = append(st.Slots, slot)
		}
	}
	sort.Slice(st.Slots, func(i, j int) bool { return st.Slots[i].Name < st.Slots[j].Name })
	return st, nil
}

// Slot returns the slot with bootname b.
func (st RaucStatus) Slot(b string) (Slot, bool) {
	for _, s := range st.Slots {
		if s.Bootname == b {
			return s, true
		}
	}
	return Slot{}, false
}

// Other returns the bootname of the slot that is not b ("A" <-> "B"),
// from the slots rauc knows, or "" when there is none.
func (st RaucStatus) Other(b string) string {
	for _, s := range st.Slots {
		if s.Bootname != b && s.Bootname != "" {
			return s.Bootname
		}
	}
	return ""
}

// SlotsFile is the name of the slot snapshot under Dir.
const SlotsFile = "slots.json"

// Slots is slots.json: the slots as rauc saw them, for the status page
// (which runs as the possync user and cannot ask rauc).
type Slots struct {
	Updated time.Time `json:"updated"`
	Booted  string    `json:"booted"` // "A" or "B"
	Slots   []Slot    `json:"slots"`
}

// WriteSlots writes dir/slots.json atomically (0644). running is the
// version of the running possync: the booted slot's version when rauc has
// none (a slot written by the image, not by rauc install).
func WriteSlots(dir string, st RaucStatus, running string) error {
	s := Slots{Updated: time.Now().UTC(), Booted: st.Booted, Slots: append([]Slot(nil), st.Slots...)}
	for i := range s.Slots {
		if s.Slots[i].Bootname == st.Booted && s.Slots[i].Version == "" {
			s.Slots[i].Version = running
		}
	}
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode slots: %w", err)
	}
	return writeFileAtomic(filepath.Join(dir, SlotsFile), append(data, '\n'), 0o644)
}

// ReadSlots reads dir/slots.json; fs.ErrNotExist when there is none.
func ReadSlots(dir string) (Slots, error) {
	var s Slots
	data, err := os.ReadFile(filepath.Join(dir, SlotsFile))
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return s, fmt.Errorf("%s: %w", SlotsFile, err)
	}
	return s, nil
}

// BootedSlot returns the value of rauc.slot= on a kernel command line
// (the contents of /proc/cmdline), or "".
func BootedSlot(cmdline string) string {
	for _, f := range strings.Fields(cmdline) {
		if v, ok := strings.CutPrefix(f, "rauc.slot="); ok {
			return v
		}
	}
	return ""
}

// writeFileAtomic writes data to a temporary file next to path, syncs it
// and renames it over path, then syncs the directory.
func writeFileAtomic(path string, data []byte, perm fs.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, werr := f.Write(data)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(tmp, perm); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return syncDir(filepath.Dir(path))
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
