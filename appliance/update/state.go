package update

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// State is what the status page shows about updates: read from Dir's files
// and the kernel command line, never by asking rauc (possync runs as its
// own user).
type State struct {
	// Available is false on a machine without A/B slots (a laptop, the
	// one-root image): no rauc.slot= on the command line and no slots.json.
	Available bool
	// Note says why Available is false, or what is missing.
	Note string
	// Booted is the running slot ("A" or "B"), from rauc.slot= or slots.json.
	Booted string
	// Other is the slot not running, as slots.json last saw it; nil when
	// not known.
	Other *Slot
	// Last is the newest update attempt; nil when there was none.
	Last *Attempt
	// Pending are the bundles waiting in incoming/ (file names).
	Pending []string
}

// ReadState gathers the State from dir (update.dir) and cmdline (the
// contents of /proc/cmdline; "" when not readable).
func ReadState(dir, cmdline string) State {
	var st State
	st.Booted = BootedSlot(cmdline)
	slots, serr := ReadSlots(dir)
	var notes []string
	switch {
	case serr == nil:
		if st.Booted == "" {
			st.Booted = slots.Booted
		}
		for i := range slots.Slots {
			if s := slots.Slots[i]; s.Bootname != "" && s.Bootname != st.Booted {
				st.Other = &s
				break
			}
		}
	case errors.Is(serr, fs.ErrNotExist):
		if st.Booted != "" {
			notes = append(notes, "the other slot is not known yet ("+filepath.Join(dir, SlotsFile)+" is written by possync boot-check)")
		}
	default:
		notes = append(notes, serr.Error())
	}
	st.Available = st.Booted != ""
	if !st.Available {
		st.Note = fmt.Sprintf("this machine has no A/B slots (no rauc.slot= on the kernel command line, no %s): it is updated by replacing the program or re-flashing the card", filepath.Join(dir, SlotsFile))
		return st
	}
	if as, err := ReadAttempts(dir); err != nil {
		notes = append(notes, "attempt log: "+err.Error())
	} else if len(as) > 0 {
		a := as[len(as)-1]
		st.Last = &a
	}
	if ents, err := os.ReadDir(filepath.Join(dir, "incoming")); err == nil {
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".raucb") && e.Type().IsRegular() {
				st.Pending = append(st.Pending, e.Name())
			}
		}
		sort.Strings(st.Pending)
	}
	st.Note = strings.Join(notes, "; ")
	return st
}
