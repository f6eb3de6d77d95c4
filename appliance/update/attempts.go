package update

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Results of an attempt, in the order one install goes through them.
const (
	ResultInstalling = "installing"  // rauc install started
	ResultInstalled  = "installed"   // rauc install finished; the box reboots into Slot
	ResultRefused    = "refused"     // the bundle was not installed (Reason says why); nothing changed
	ResultBooting    = "booting"     // the box booted Slot for the first time; boot-check is waiting for health
	ResultGood       = "good"        // possync was healthy on Slot; rauc status mark-good
	ResultFailed     = "failed"      // possync was not healthy on Slot in time (or the install broke off)
	ResultRolledBack = "rolled-back" // the box came back on the other slot without Slot becoming good
)

// Sources of a bundle.
const (
	SourceFAT    = "fat"    // the card's FAT partition (/boot/firmware)
	SourceUSB    = "usb"    // a USB stick
	SourceUpload = "upload" // the admin endpoint (incoming/)
	SourceBoot   = "boot"   // a record made by boot-check
	SourceFile   = "file"   // possync install-bundle FILE from elsewhere
)

// Attempt is one line of attempts.jsonl (the contract in docs/update.md).
type Attempt struct {
	Time        time.Time `json:"time"`
	Version     string    `json:"version"`
	Slot        string    `json:"slot"` // the slot installed into / booted: "A" or "B"
	FromVersion string    `json:"from_version"`
	FromSlot    string    `json:"from_slot"`
	Source      string    `json:"source"`
	Result      string    `json:"result"`
	Reason      string    `json:"reason"`
	Bundle      string    `json:"bundle,omitempty"` // the bundle's file name, when there is one
}

// AttemptsFile is the name of the attempt log under Dir.
const AttemptsFile = "attempts.jsonl"

// AppendAttempt appends a to dir/attempts.jsonl (created 0644) and syncs
// it: the record must survive the reboot that usually follows.
func AppendAttempt(dir string, a Attempt) error {
	if a.Time.IsZero() {
		a.Time = time.Now().UTC()
	}
	line, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("encode attempt: %w", err)
	}
	path := filepath.Join(dir, AttemptsFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("open attempt log: %w", err)
	}
	line = append(line, '\n')
	if endsCut(f) {
		// A write cut by a power loss left a line without its end: do not
		// glue this record to it (the reader would skip both).
		line = append([]byte{'\n'}, line...)
	}
	_, werr := f.Write(line)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return fmt.Errorf("append to %s: %w", path, err)
	}
	return nil
}

// endsCut reports whether f's last byte is not a line feed.
func endsCut(f *os.File) bool {
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return false
	}
	var last [1]byte
	_, err = f.ReadAt(last[:], fi.Size()-1)
	return err == nil && last[0] != '\n'
}

// maxAttemptsRead bounds how much of the log is read: the newest records
// are at its end.
const maxAttemptsRead = 1 << 20

// ReadAttempts returns the attempts of dir/attempts.jsonl, oldest first;
// none (and no error) when the file does not exist. A line that does not
// parse (a write cut by a power loss) is skipped; only the last 1 MiB of a
// long log is read.
func ReadAttempts(dir string) ([]Attempt, error) {
	data, err := readTail(filepath.Join(dir, AttemptsFile), maxAttemptsRead)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Attempt
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxAttemptsRead)
	for sc.Scan() {
		var a Attempt
		if json.Unmarshal(sc.Bytes(), &a) == nil && a.Result != "" {
			out = append(out, a)
		}
	}
	return out, nil
}

// LastAttempt returns the newest attempt, or false when there is none.
func LastAttempt(dir string) (Attempt, bool, error) {
	as, err := ReadAttempts(dir)
	if err != nil || len(as) == 0 {
		return Attempt{}, false, err
	}
	return as[len(as)-1], true, nil
}

// readTail reads the last limit bytes of path, from the start of a line.
func readTail(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	off := max(fi.Size()-limit, 0)
	buf := make([]byte, fi.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if off > 0 {
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			buf = buf[i+1:]
		}
	}
	return buf, nil
}
