package main

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"possync/appliance"
	"possync/appliance/config"
	"possync/appliance/httpapi"
	upd "possync/appliance/update"
)

// uploadKeepFree is the space an upload leaves free on the data partition,
// which the store shares: the store's automatic reserve is at most 128 MiB.
const uploadKeepFree = 128 << 20

// adminEndpoint builds the admin endpoint from [admin] and [update]; nil
// (off) without a token.
func adminEndpoint(cfg config.Config, logger *slog.Logger) (*httpapi.Admin, error) {
	tok, err := cfg.Admin.LoadToken()
	if err != nil || tok == nil {
		if err == nil && cfg.Admin.TokenFileMissing() {
			logger.Info("admin endpoint off: admin.token_file does not exist", "token_file", cfg.Admin.TokenFile)
		}
		return nil, err
	}
	keep := uint64(uploadKeepFree)
	if r := uint64(cfg.Storage.ReserveMiB) << 20; r > keep {
		keep = r
	}
	maxBytes := int64(cfg.Admin.MaxBundleMiB) << 20
	logger.Info("admin endpoint on", "path", "/possync/admin/update", "update_dir", cfg.Update.Dir, "max_bundle_mib", cfg.Admin.MaxBundleMiB)
	rcv := &upd.Receiver{
		Dir: cfg.Update.Dir, MaxBytes: maxBytes, KeepFreeBytes: keep, Running: appliance.Version, Log: logger,
		Rauc:        upd.Rauc{Path: cfg.Update.Rauc, Keyring: cfg.Update.Keyring, Compatible: cfg.Update.Compatible},
		Installable: func() error { return hasSlots(cfg.Update.Dir) },
	}
	if n := rcv.RemoveParts(); n > 0 {
		logger.Info("deleted the part files of uploads cut off by a crash", "count", n, "dir", filepath.Join(cfg.Update.Dir, "incoming"))
	}
	if err := rcv.Rauc.CheckKeyring(); err != nil {
		logger.Warn("admin endpoint: uploads will be refused until this is fixed", "err", err)
	}
	return &httpapi.Admin{Token: tok, MaxBundleBytes: maxBytes, Updates: rcv}, nil
}

// updateState reads the slots and the last attempt for the status page,
// at most once a second.
func updateState(dir string) func() upd.State {
	var (
		mu   sync.Mutex
		last upd.State
		at   time.Time
	)
	return func() upd.State {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(at) < time.Second {
			return last
		}
		cmdline, _ := os.ReadFile("/proc/cmdline")
		last, at = upd.ReadState(dir, string(cmdline)), time.Now()
		return last
	}
}

// hasSlots reports whether this machine has A/B slots (rauc.slot= on the
// kernel command line, or the slots.json boot-check writes): elsewhere
// nothing installs an uploaded bundle.
func hasSlots(dir string) error {
	cmdline, _ := os.ReadFile("/proc/cmdline")
	if st := upd.ReadState(dir, string(cmdline)); !st.Available {
		return errors.New(st.Note)
	}
	return nil
}
