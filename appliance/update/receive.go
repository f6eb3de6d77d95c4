package update

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Kinds of ReceiveError, which the HTTP layer maps to status codes.
const (
	KindTooLarge = "too_large" // over MaxBytes (413)
	KindDiskFull = "disk_full" // not enough room on the data file system (507)
	KindBusy     = "busy"      // another upload is being received (409)
	KindShort    = "short"     // the body ended early or could not be read (400)
	KindRefused  = "refused"   // rauc refused the bundle (422)
	KindInternal = "internal"  // the box could not store it (500)
	KindNoSlots  = "no_slots"  // this machine cannot install bundles: no A/B slots (501)
)

// ReceiveError is an upload that was not kept; its part file is deleted.
type ReceiveError struct {
	Kind string
	Msg  string
	Err  error
}

func (e *ReceiveError) Error() string { return e.Msg }
func (e *ReceiveError) Unwrap() error { return e.Err }

// Received is an accepted upload, waiting in incoming/.
type Received struct {
	File       string // path of the bundle in incoming/
	Version    string
	Compatible string
	Bytes      int64
	Next       string // what happens next, for the uploader
}

// Receiver stores uploaded bundles in Dir/incoming after rauc checked
// them. One upload at a time. Safe for concurrent use.
type Receiver struct {
	Dir      string // update.dir
	MaxBytes int64  // largest bundle accepted
	// KeepFreeBytes is the space left free on the data file system, which
	// the store shares: an upload that would go below it is refused.
	KeepFreeBytes uint64
	Rauc          Rauc
	Running       string // version of the running possync, for Next
	// Installable reports whether an accepted bundle would be installed on
	// this machine (it has A/B slots); nil = always. A bundle nothing will
	// install only fills the data partition: it is refused.
	Installable func() error
	Log         *slog.Logger

	mu sync.Mutex
}

// checkEvery is how often (bytes written) free space is measured while a
// bundle arrives.
const checkEvery = 4 << 20

// Receive reads a bundle from r (size bytes, -1 when not known), writes it
// to incoming/<name>.raucb.part, checks it with `rauc info` and renames it
// to incoming/possync-<version>.raucb. Any failure is a *ReceiveError and
// leaves no file behind.
func (rc *Receiver) Receive(ctx context.Context, r io.Reader, size int64) (Received, error) {
	if !rc.mu.TryLock() {
		return Received{}, &ReceiveError{Kind: KindBusy, Msg: "another bundle is being uploaded to this box; try again when it is done"}
	}
	defer rc.mu.Unlock()
	if err := rc.installable(); err != nil {
		return Received{}, err
	}
	if size > rc.MaxBytes {
		return Received{}, rc.tooLarge(size)
	}
	in := filepath.Join(rc.Dir, "incoming")
	if err := os.MkdirAll(in, 0o750); err != nil {
		return Received{}, &ReceiveError{Kind: KindInternal, Msg: fmt.Sprintf("the box has no usable incoming directory %s: %v", in, err), Err: err}
	}
	removeParts(in) // left by an upload cut by a crash or power loss
	if err := rc.Rauc.CheckKeyring(); err != nil {
		return Received{}, &ReceiveError{Kind: KindInternal, Msg: "this box cannot check bundles: " + err.Error(), Err: err}
	}
	if size > 0 {
		if free, ok := freeBytes(in); ok && uint64(size)+rc.KeepFreeBytes > free {
			return Received{}, rc.diskFull(in, free, nil)
		}
	}
	part := filepath.Join(in, fmt.Sprintf("upload-%d.raucb.part", time.Now().UnixNano()))
	f, err := os.OpenFile(part, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return Received{}, &ReceiveError{Kind: KindInternal, Msg: fmt.Sprintf("create %s: %v", part, err), Err: err}
	}
	n, err := rc.copy(f, r, in)
	if err == nil && n == 0 {
		err = &ReceiveError{Kind: KindShort, Msg: "the upload is empty: send the bundle as the request body"}
	}
	if err == nil && size >= 0 && n != size {
		err = &ReceiveError{Kind: KindShort, Msg: fmt.Sprintf("upload ended after %d of %d bytes", n, size)}
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(part)
		return Received{}, rc.writeError(err, in)
	}
	info, err := rc.Rauc.Info(ctx, part)
	if err != nil {
		_ = os.Remove(part)
		var re *RefusedError
		if errors.As(err, &re) {
			return Received{}, &ReceiveError{Kind: KindRefused, Msg: "bundle refused, nothing changed: " + re.Reason, Err: err}
		}
		return Received{}, &ReceiveError{Kind: KindInternal, Msg: "bundle could not be checked: " + err.Error(), Err: err}
	}
	final := filepath.Join(in, "possync-"+safeName(info.Version)+".raucb")
	if err := os.Rename(part, final); err != nil {
		_ = os.Remove(part)
		return Received{}, &ReceiveError{Kind: KindInternal, Msg: fmt.Sprintf("rename %s: %v", part, err), Err: err}
	}
	if err := syncDir(in); err != nil {
		rc.log().Warn("upload: sync incoming directory", "err", err)
	}
	rc.log().Info("update bundle received", "file", final, "version", info.Version, "bytes", n)
	return Received{File: final, Version: info.Version, Compatible: info.Compatible, Bytes: n,
		Next: fmt.Sprintf("possync-update.service installs it into the other slot within seconds and reboots the box (the tills are offline for about a minute); "+
			"possync boot-check marks the new slot good once possync answers healthy with a committed write, otherwise the box comes back on %s by itself. "+
			"The status page shows the result under \"This box\" (Last update).", cmpOr(rc.Running, "the running version"))}, nil
}

// Fits reports, without receiving anything, whether a bundle of size
// bytes would be taken now: not too large, room on the data partition, no
// other upload under way. A *ReceiveError when not.
func (rc *Receiver) Fits(size int64) error {
	if err := rc.installable(); err != nil {
		return err
	}
	if size > rc.MaxBytes {
		return rc.tooLarge(size)
	}
	if !rc.mu.TryLock() {
		return &ReceiveError{Kind: KindBusy, Msg: "another bundle is being uploaded to this box; try again when it is done"}
	}
	rc.mu.Unlock()
	if err := rc.Rauc.CheckKeyring(); err != nil {
		return &ReceiveError{Kind: KindInternal, Msg: "this box cannot check bundles: " + err.Error(), Err: err}
	}
	dir := filepath.Join(rc.Dir, "incoming")
	if fi, err := os.Stat(dir); err != nil {
		dir = rc.Dir
	} else if !fi.IsDir() {
		return &ReceiveError{Kind: KindInternal, Msg: fmt.Sprintf("the box has no usable incoming directory %s: not a directory", dir)}
	}
	if free, ok := freeBytes(dir); ok && uint64(max(size, 0))+rc.KeepFreeBytes > free {
		return rc.diskFull(dir, free, nil)
	}
	return nil
}

// copy writes r to f, at most MaxBytes, measuring free space every
// checkEvery bytes.
func (rc *Receiver) copy(f *os.File, r io.Reader, dir string) (int64, error) {
	buf := make([]byte, 256<<10)
	var n, checked int64
	for {
		m, rerr := r.Read(buf)
		if m > 0 {
			if n+int64(m) > rc.MaxBytes {
				return n, rc.tooLarge(-1)
			}
			if _, err := f.Write(buf[:m]); err != nil {
				return n, err
			}
			n += int64(m)
			if n-checked >= checkEvery {
				checked = n
				if free, ok := freeBytes(dir); ok && free < rc.KeepFreeBytes {
					return n, rc.diskFull(dir, free, nil)
				}
			}
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, &ReceiveError{Kind: KindShort, Msg: fmt.Sprintf("upload broke off after %d bytes: %v", n, rerr), Err: rerr}
		}
	}
}

func (rc *Receiver) writeError(err error, dir string) error {
	var re *ReceiveError
	if errors.As(err, &re) {
		return re
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		free, _ := freeBytes(dir)
		return rc.diskFull(dir, free, err)
	}
	return &ReceiveError{Kind: KindInternal, Msg: "bundle could not be stored: " + err.Error(), Err: err}
}

func (rc *Receiver) installable() error {
	if rc.Installable == nil {
		return nil
	}
	if err := rc.Installable(); err != nil {
		return &ReceiveError{Kind: KindNoSlots, Err: err, Msg: "this box cannot install update bundles: " + err.Error()}
	}
	return nil
}

func (rc *Receiver) tooLarge(size int64) error {
	what := "the bundle"
	if size >= 0 {
		what = fmt.Sprintf("the bundle (%d bytes)", size)
	}
	return &ReceiveError{Kind: KindTooLarge, Msg: fmt.Sprintf("%s is larger than this box accepts: %s (admin.max_bundle_mib)", what, sizeName(rc.MaxBytes))}
}

func (rc *Receiver) diskFull(dir string, free uint64, err error) error {
	return &ReceiveError{Kind: KindDiskFull, Err: err, Msg: fmt.Sprintf(
		"not enough free space for the bundle on the data partition (%s: %d MiB free, %d MiB are kept free for the store); nothing was kept",
		dir, free>>20, rc.KeepFreeBytes>>20)}
}

func (rc *Receiver) log() *slog.Logger {
	if rc.Log == nil {
		return slog.Default()
	}
	return rc.Log
}

// RemoveParts deletes the part files in incoming/ that an upload cut by a
// crash or power loss left behind (up to MaxBytes each, on the partition
// the store needs); possync serve runs it when it starts. It returns how
// many it deleted; none while an upload is arriving.
func (rc *Receiver) RemoveParts() int {
	if !rc.mu.TryLock() {
		return 0
	}
	defer rc.mu.Unlock()
	return removeParts(filepath.Join(rc.Dir, "incoming"))
}

// removeParts deletes *.raucb.part files in dir and returns how many.
func removeParts(dir string) int {
	parts, _ := filepath.Glob(filepath.Join(dir, "*.raucb.part"))
	n := 0
	for _, p := range parts {
		if os.Remove(p) == nil {
			n++
		}
	}
	return n
}

// freeBytes is the space available to unprivileged users on dir's file
// system.
func freeBytes(dir string) (uint64, bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, false
	}
	return st.Bavail * uint64(st.Bsize), true
}

// safeName keeps a version usable as a file name: letters, digits and
// ".-+_"; anything else becomes "_".
func safeName(v string) string {
	v = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '+', r == '_':
			return r
		}
		return '_'
	}, v)
	if len(v) > 64 {
		v = v[:64]
	}
	return strings.TrimLeft(v, ".")
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// sizeName writes n in MiB when it is a whole number of them.
func sizeName(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}
