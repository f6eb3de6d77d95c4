package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"possync/appliance"
	"possync/appliance/config"
	upd "possync/appliance/update"
)

// Exit codes of the root-side update commands (docs/upd.md).
const (
	rootExitRefused = 3  // the bundle was refused (renamed FILE.refused, reason in attempts.jsonl)
	rootExitTrial   = 75 // EX_TEMPFAIL: the running slot is on trial; the bundle waits
)

// rootFlags are the flags of install-bundle, install-pending and
// boot-check: the configuration file, and overrides for tests and the
// QEMU update test.
type rootFlags struct {
	config, dir, rauc, keyring, reboot string
	noReboot                           bool
}

func (r *rootFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&r.config, "config", "", "configuration file (TOML); [update] and http.listen are read from it")
	fs.StringVar(&r.dir, "dir", "", "update directory (overrides upd.dir)")
	fs.StringVar(&r.rauc, "rauc", "", "rauc program (overrides upd.rauc)")
	fs.StringVar(&r.keyring, "keyring", "", "CA file bundles must be signed under (overrides upd.keyring)")
	fs.StringVar(&r.reboot, "reboot", "", "reboot command, split at spaces (overrides upd.reboot_command)")
	fs.BoolVar(&r.noReboot, "no-reboot", false, "do not reboot (say what would have happened)")
}

// load reads the configuration and applies the overrides.
func (r *rootFlags) load() (config.Config, error) {
	cfg := config.Default()
	if r.config != "" {
		var err error
		if cfg, err = config.Load(r.config); err != nil {
			return cfg, &exitError{code: 1, err: err}
		}
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&cfg.Update.Dir, r.dir)
	set(&cfg.Update.Rauc, r.rauc)
	set(&cfg.Update.Keyring, r.keyring)
	if r.reboot != "" {
		cfg.Update.RebootCommand = strings.Fields(r.reboot)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, &exitError{code: 1, err: fmt.Errorf("invalid settings: %w", err)}
	}
	return cfg, nil
}

// rootCmd is one root-side command being set up: its flag set with the
// rootFlags registered; after parse, the configuration, logger and
// installer.
type rootCmd struct {
	fs     *flag.FlagSet
	rf     rootFlags
	cfg    config.Config
	logger *slog.Logger
	in     *upd.Installer
}

func newRootCmd(name string, stderr io.Writer) *rootCmd {
	c := &rootCmd{fs: flag.NewFlagSet(name, flag.ContinueOnError)}
	c.fs.SetOutput(stderr)
	c.rf.register(c.fs)
	return c
}

// parse parses args, wants exactly nargs positional arguments (else
// prints usage, exit 2), loads the configuration and builds the installer.
func (c *rootCmd) parse(args []string, nargs int, usage string, stderr io.Writer) error {
	if err := c.fs.Parse(args); err != nil {
		return &exitError{code: 2}
	}
	if c.fs.NArg() != nargs {
		fmt.Fprintln(stderr, usage)
		return &exitError{code: 2}
	}
	cfg, err := c.rf.load()
	if err != nil {
		return err
	}
	c.cfg, c.logger = cfg, newLogger(cfg.Log, stderr)
	c.in = installer(cfg, c.logger)
	return nil
}

func installer(cfg config.Config, logger *slog.Logger) *upd.Installer {
	return &upd.Installer{Dir: cfg.Update.Dir, Running: appliance.Version, Reboot: cfg.Update.RebootCommand, Log: logger,
		Rauc: upd.Rauc{Path: cfg.Update.Rauc, Keyring: cfg.Update.Keyring, Compatible: cfg.Update.Compatible}}
}

// runInstallBundle: possync install-bundle [flags] FILE.
func runInstallBundle(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newRootCmd("install-bundle", stderr)
	source := c.fs.String("source", upd.SourceFile, "where the bundle came from, for the attempt log: fat, usb, upload or file")
	if err := c.parse(args, 1, "usage: possync install-bundle [-config FILE] [-source fat|usb|upload|file] [-no-reboot] FILE", stderr); err != nil {
		return err
	}
	out, err := c.in.InstallBundle(ctx, c.fs.Arg(0), *source)
	return finishInstall(ctx, c.in, out, err, c.rf.noReboot, stdout)
}

// finishInstall reports an install's outcome, reboots after a successful
// one, and maps errors to exit codes.
func finishInstall(ctx context.Context, in *upd.Installer, out upd.Outcome, err error, noReboot bool, stdout io.Writer) error {
	var re *upd.RefusedError
	switch {
	case errors.Is(err, upd.ErrOnTrial), errors.Is(err, upd.ErrRebootPending):
		return &exitError{code: rootExitTrial, err: err}
	case errors.As(err, &re):
		if out.Renamed == "" {
			return &exitError{code: rootExitRefused, err: fmt.Errorf("%s (upload deleted)", err)}
		}
		return &exitError{code: rootExitRefused, err: fmt.Errorf("%s (renamed to %s)", err, out.Renamed)}
	case err != nil:
		return err
	case !out.Installed:
		fmt.Fprintln(stdout, "no bundle to install")
		return nil
	}
	where := "bundle now " + out.Renamed
	if out.Renamed == "" {
		where = "upload deleted from incoming/"
	}
	fmt.Fprintf(stdout, "installed %s into slot %s (%s)\n", out.Version, out.Slot, where)
	if noReboot {
		fmt.Fprintln(stdout, "not rebooting (-no-reboot): the next boot starts slot", out.Slot)
		return nil
	}
	return in.RebootNow(ctx)
}

// runInstallPending: possync install-pending [flags] [-mount DEV]. Without
// -mount it looks in upd.dir/incoming and the FAT partition; with it,
// only on the USB stick DEV, which it mounts, and unmounts before the
// reboot so the renamed file is on the stick.
func runInstallPending(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newRootCmd("install-pending", stderr)
	fat := c.fs.String("fat", "/boot/firmware", "the card's FAT partition, searched for *.raucb")
	dev := c.fs.String("mount", "", "a USB stick's block device (e.g. /dev/sda1): mount it, install from its top directory, unmount")
	if err := c.parse(args, 0, "usage: possync install-pending [-config FILE] [-fat DIR] [-mount DEV] [-no-reboot]", stderr); err != nil {
		return err
	}
	sources := []upd.Source{{Dir: filepath.Join(c.cfg.Update.Dir, "incoming"), Kind: upd.SourceUpload}, {Dir: *fat, Kind: upd.SourceFAT}}
	if *dev != "" {
		mnt, unmount, err := mountStick(ctx, *dev, c.logger)
		if err != nil {
			return err
		}
		sources = []upd.Source{{Dir: mnt, Kind: upd.SourceUSB}}
		out, ierr := c.in.InstallPending(ctx, sources)
		if err := unmount(); err != nil {
			c.logger.Error("unmount USB stick", "dev", *dev, "err", err)
		}
		return finishInstall(ctx, c.in, out, ierr, c.rf.noReboot, stdout)
	}
	out, err := c.in.InstallPending(ctx, sources)
	return finishInstall(ctx, c.in, out, err, c.rf.noReboot, stdout)
}

// mountStick mounts dev (nosuid, nodev, noexec) under /run/possync/usb/
// and returns the mount point and a function that syncs and unmounts it.
func mountStick(ctx context.Context, dev string, logger *slog.Logger) (string, func() error, error) {
	if !strings.HasPrefix(dev, "/dev/") || strings.Contains(dev, "..") {
		return "", nil, &exitError{code: 2, err: fmt.Errorf("install-pending: -mount %q is not a /dev/ block device", dev)}
	}
	mnt := filepath.Join("/run/possync/usb", filepath.Base(dev))
	if err := os.MkdirAll(mnt, 0o700); err != nil {
		return "", nil, fmt.Errorf("usb mount point: %w", err)
	}
	if out, err := exec.CommandContext(ctx, "mount", "-o", "nosuid,nodev,noexec", dev, mnt).CombinedOutput(); err != nil {
		_ = os.Remove(mnt)
		return "", nil, fmt.Errorf("mount %s: %w: %s", dev, err, strings.TrimSpace(string(out)))
	}
	logger.Info("USB stick mounted", "dev", dev, "at", mnt)
	return mnt, func() error {
		_ = exec.Command("sync").Run()
		out, err := exec.Command("umount", mnt).CombinedOutput()
		if err != nil {
			return fmt.Errorf("umount %s: %w: %s", mnt, err, strings.TrimSpace(string(out)))
		}
		return os.Remove(mnt)
	}, nil
}

// runBootCheck: possync boot-check [flags]. Exit 0 when the slot was
// marked good; 1 when it was not (and, on a trial boot, the box reboots
// into the other slot).
func runBootCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newRootCmd("boot-check", stderr)
	within := c.fs.Duration("within", 0, "how long to wait for possync to be healthy (overrides upd.healthy_within)")
	healthFlag := c.fs.String("health-url", "", "possync's health check (default http://127.0.0.1:<http.listen port>/healthz?write=1)")
	if err := c.parse(args, 0, "usage: possync boot-check [-config FILE] [-within 90s] [-no-reboot]", stderr); err != nil {
		return err
	}
	cfg, in := c.cfg, c.in
	url := *healthFlag
	if url == "" {
		var err error
		if url, err = healthURL(cfg.HTTP.Listen); err != nil {
			return err
		}
	}
	bc := &upd.BootCheck{Installer: in, HealthURL: url, Within: cfg.Update.HealthyWithin.D()}
	if *within > 0 {
		bc.Within = *within
	}
	start := time.Now()
	res, err := bc.Run(ctx)
	switch {
	case err != nil:
		return err
	case res.Good:
		fmt.Fprintf(stdout, "slot %s (%s) marked good after %s\n", res.Booted, appliance.Version, time.Since(start).Round(time.Millisecond))
		return nil
	case !res.Reboot:
		return &exitError{code: 1, err: fmt.Errorf("slot %s not marked good: %s", res.Booted, res.Reason)}
	}
	fmt.Fprintf(stdout, "slot %s (%s) marked bad: %s\n", res.Booted, appliance.Version, res.Reason)
	if c.rf.noReboot {
		fmt.Fprintln(stdout, "not rebooting (-no-reboot)")
	} else if err := in.RebootNow(ctx); err != nil {
		return err
	}
	return &exitError{code: 1}
}

// healthURL is possync's write-probing health check for http.listen: on
// 127.0.0.1 unless the listener is bound to one address.
func healthURL(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("http.listen: %w", err)
	}
	if ip := net.ParseIP(host); host == "" || host == "localhost" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/healthz?write=1", nil
}
