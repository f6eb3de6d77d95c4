package update

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Installer is the root side: it installs bundles with rauc, keeps the
// attempt log and slots.json, and reboots.
type Installer struct {
	Dir     string // update.dir
	Rauc    Rauc
	Running string // version of this possync binary (the running slot's)
	// Reboot is the command that reboots the box (default systemctl reboot).
	Reboot []string
	Log    *slog.Logger
}

// ErrOnTrial is returned when the running slot has not been marked good
// yet: installing now would overwrite the other slot, the only one known
// to work. The bundle is left where it is for a later run.
var ErrOnTrial = errors.New("the running slot is on trial")

// ErrRebootPending is returned between an install and the reboot into
// it: a record written now would become the newest attempt and hide the
// update from boot-check. The bundle is left for the run after the boot.
var ErrRebootPending = errors.New("an installed update waits for the reboot into it")

func (in *Installer) log() *slog.Logger {
	if in.Log == nil {
		return slog.Default()
	}
	return in.Log
}

// lock takes an exclusive lock on Dir/.lock, so that the path unit, a USB
// stick and a manual install-bundle never run rauc at once.
func (in *Installer) lock() (func(), error) {
	if err := os.MkdirAll(in.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("update dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(in.Dir, ".lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("update lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("update lock: %w", err)
	}
	return func() { f.Close() }, nil
}

// Outcome is what InstallBundle did.
type Outcome struct {
	Installed bool   // rauc installed the bundle; the caller reboots
	Version   string // the bundle's version ("" when it could not be read)
	Slot      string // the slot written
	Renamed   string // where the bundle file is now
}

// InstallBundle verifies file, installs it into the other slot and renames
// it to FILE.installed, or FILE.refused with the reason in the attempt log
// (and a *RefusedError). It never installs a file twice: the file is
// renamed to FILE.installing before rauc reads it. With the running slot
// still on trial it returns ErrOnTrial and leaves the file alone. It does
// not reboot: see Reboot.
func (in *Installer) InstallBundle(ctx context.Context, file, source string) (Outcome, error) {
	unlock, err := in.lock()
	if err != nil {
		return Outcome{}, err
	}
	defer unlock()
	if fi, err := os.Lstat(file); err != nil {
		return Outcome{}, fmt.Errorf("bundle: %w", err)
	} else if !fi.Mode().IsRegular() {
		// incoming/ belongs to the possync user: root follows no link
		// there (to install, chown or chmod what it points to).
		return Outcome{}, fmt.Errorf("bundle %s is not a regular file (%s): not installed; give the bundle itself", file, fi.Mode().Type())
	}
	st, err := in.Rauc.Status(ctx)
	if err != nil {
		return Outcome{}, fmt.Errorf("rauc status: %w", err)
	}
	if err := WriteSlots(in.Dir, st, in.Running); err != nil {
		in.log().Warn("write slots.json", "err", err)
	}
	if trial, a := in.onTrial(st.Booted); trial {
		return Outcome{}, fmt.Errorf("%w: slot %s runs %s since an update (%s) and possync boot-check has not marked it good; "+
			"installing now would overwrite slot %s, the only one known to work. %s is left for the next run",
			ErrOnTrial, st.Booted, in.Running, a.Time.Format(time.RFC3339), st.Other(st.Booted), file)
	}
	if a, ok := in.lastAttempt(); ok && a.Result == ResultInstalled && a.Slot != st.Booted {
		return Outcome{}, fmt.Errorf("%w: %s was installed into slot %s (%s); reboot the box to start it. %s is left for the next run",
			ErrRebootPending, a.Version, a.Slot, a.Time.Format(time.RFC3339), file)
	}
	target := st.Other(st.Booted)
	rec := Attempt{Slot: target, FromVersion: in.Running, FromSlot: st.Booted, Source: source, Bundle: filepath.Base(file)}

	info, err := in.Rauc.Info(ctx, file)
	if err != nil {
		return in.refuse(file, rec, err)
	}
	rec.Version = info.Version
	working := file + ".installing"
	if err := os.Rename(file, working); err != nil {
		return Outcome{}, fmt.Errorf("rename bundle before installing: %w", err)
	}
	if os.Geteuid() == 0 {
		// An upload is owned by possync: take it (RAUC asks the same of
		// plain bundles), through a descriptor that is not a link: the
		// entry may have been swapped since the Lstat. rauc install
		// verifies the signature again itself. FAT has no owners: errors
		// are ignored.
		if f, err := os.OpenFile(working, os.O_RDONLY|syscall.O_NOFOLLOW, 0); err == nil {
			if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
				_ = f.Chown(0, 0)
				_ = f.Chmod(0o644)
			}
			f.Close()
		}
	}
	rec.Result = ResultInstalling
	if err := AppendAttempt(in.Dir, rec); err != nil {
		return Outcome{}, err
	}
	in.log().Info("installing update", "bundle", file, "version", info.Version, "slot", target, "from", in.Running)
	start := time.Now()
	if err := in.Rauc.Install(ctx, working); err != nil {
		var re *RefusedError
		if errors.As(err, &re) {
			return in.refuse(working, rec, err)
		}
		// rauc could not be run at all: not the bundle's fault. Put it
		// back for the next run.
		rec.Result, rec.Reason, rec.Time = ResultRefused, "rauc could not be run (the bundle is kept for the next run): "+err.Error(), time.Time{}
		_ = AppendAttempt(in.Dir, rec)
		_ = os.Rename(working, file)
		return Outcome{Version: info.Version, Slot: target, Renamed: file}, fmt.Errorf("install %s: %w", file, err)
	}
	rec.Result, rec.Reason, rec.Time = ResultInstalled, fmt.Sprintf("rauc install took %s; rebooting into slot %s", time.Since(start).Round(time.Second), target), time.Time{}
	if err := AppendAttempt(in.Dir, rec); err != nil {
		return Outcome{}, err
	}
	done := file + ".installed"
	if err := os.Rename(working, done); err != nil {
		in.log().Warn("rename installed bundle", "err", err)
		done = working
	}
	done = in.dropUpload(done, source)
	if st2, err := in.Rauc.Status(ctx); err == nil {
		_ = WriteSlots(in.Dir, st2, in.Running)
	}
	return Outcome{Installed: true, Version: info.Version, Slot: target, Renamed: done}, nil
}

// refuse records a refused bundle and renames it to FILE.refused.
func (in *Installer) refuse(file string, rec Attempt, err error) (Outcome, error) {
	var re *RefusedError
	if !errors.As(err, &re) {
		return Outcome{}, err
	}
	rec.Result, rec.Reason, rec.Time = ResultRefused, re.Reason, time.Time{}
	if aerr := AppendAttempt(in.Dir, rec); aerr != nil {
		in.log().Error("record refused bundle", "err", aerr)
	}
	dst := strings.TrimSuffix(file, ".installing") + ".refused"
	if rerr := os.Rename(file, dst); rerr != nil {
		in.log().Warn("rename refused bundle", "err", rerr)
		dst = file
	}
	in.log().Warn("update bundle refused", "bundle", file, "reason", re.Reason)
	dst = in.dropUpload(dst, rec.Source)
	return Outcome{Version: rec.Version, Slot: rec.Slot, Renamed: dst}, err
}

// dropUpload deletes a consumed upload (renamed .installed or .refused):
// it sits on the data partition, which the store needs, and the attempt
// log names it. Bundles from the card or a stick keep their new names: the
// shop owner sees them. It returns where the bundle is now ("" = deleted).
func (in *Installer) dropUpload(path, source string) string {
	if source != SourceUpload {
		return path
	}
	if err := os.Remove(path); err != nil {
		in.log().Warn("delete consumed upload", "file", path, "err", err)
		return path
	}
	return ""
}

// onTrial reports whether the booted slot was installed by an update and
// has not been marked good: the newest attempt is for booted and says
// installed or booting — or failed, when boot-check marked it bad but the
// reboot back to the other slot did not happen.
func (in *Installer) onTrial(booted string) (bool, Attempt) {
	as, err := ReadAttempts(in.Dir)
	if err != nil || len(as) == 0 {
		return false, Attempt{}
	}
	a := as[len(as)-1]
	switch a.Result {
	case ResultInstalled, ResultBooting, ResultFailed:
		return a.Slot == booted, a
	}
	return false, a
}

func (in *Installer) lastAttempt() (Attempt, bool) {
	as, err := ReadAttempts(in.Dir)
	if err != nil || len(as) == 0 {
		return Attempt{}, false
	}
	return as[len(as)-1], true
}

// PendingIn lists the *.raucb files directly in dir, oldest first.
func PendingIn(dir string) []string {
	files, _ := filepath.Glob(filepath.Join(dir, "*.raucb"))
	type fm struct {
		path string
		mod  time.Time
	}
	var out []fm
	for _, f := range files {
		if fi, err := os.Lstat(f); err == nil && fi.Mode().IsRegular() { // no links: see InstallBundle
			out = append(out, fm{f, fi.ModTime()})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].mod.Before(out[j].mod) })
	paths := make([]string, len(out))
	for i, f := range out {
		paths[i] = f.path
	}
	return paths
}

// InstallPending installs the pending bundles of each source in turn
// until one is installed (the box then reboots into it; the others wait
// for the next run). Refused bundles are renamed and skipped.
func (in *Installer) InstallPending(ctx context.Context, sources []Source) (Outcome, error) {
	var errs []error
	for _, src := range sources {
		if err := in.setAsideOdd(src); err != nil {
			errs = append(errs, err)
		}
		for _, f := range PendingIn(src.Dir) {
			out, err := in.InstallBundle(ctx, f, src.Kind)
			if out.Installed {
				return out, nil
			}
			if errors.Is(err, ErrOnTrial) || errors.Is(err, ErrRebootPending) {
				return out, err
			}
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	return Outcome{}, errors.Join(errs...)
}

// setAsideOdd renames the *.raucb entries of src that are not regular
// files (a symlink, a directory) to NAME.refused:
// possync-update.path starts install-pending while anything matches
// *.raucb, so an entry it skips would have it started again at once, for
// ever. A symlink is renamed itself, never followed. They are logged, not
// recorded in the attempt log.
func (in *Installer) setAsideOdd(src Source) error {
	names, _ := filepath.Glob(filepath.Join(src.Dir, "*.raucb"))
	var errs []error
	for _, f := range names {
		fi, err := os.Lstat(f)
		if err != nil || fi.Mode().IsRegular() {
			continue
		}
		reason := fmt.Sprintf("%s is not a regular file (%s): set aside as %s.refused, not installed", filepath.Base(f), fi.Mode().Type(), filepath.Base(f))
		if err := os.Rename(f, f+".refused"); err != nil {
			errs = append(errs, fmt.Errorf("set aside %s: %w", f, err))
			continue
		}
		// Logged, not recorded: the newest attempt tells boot-check and
		// onTrial whether an update is under way, and this is none.
		in.log().Warn("update bundle refused", "bundle", f, "reason", reason)
	}
	return errors.Join(errs...)
}

// Source is a directory bundles are picked up from.
type Source struct {
	Dir  string
	Kind string // SourceUpload, SourceFAT, SourceUSB
}

// RebootNow runs the reboot command.
func (in *Installer) RebootNow(ctx context.Context) error {
	cmd := in.Reboot
	if len(cmd) == 0 {
		cmd = []string{"systemctl", "reboot"}
	}
	in.log().Info("rebooting", "command", strings.Join(cmd, " "))
	out, err := exec.CommandContext(ctx, cmd[0], cmd[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("reboot (%s): %w: %s", strings.Join(cmd, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
