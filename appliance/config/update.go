package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Admin configures the admin endpoint (POST /possync/admin/update, for
// `possync update`). It is off unless Token or TokenFile is set.
type Admin struct {
	// Token is the bearer token; at least MinTokenBytes. Prefer TokenFile:
	// the configuration file is often readable by more people.
	Token string `toml:"token"`
	// TokenFile holds the token (surrounding white space ignored).
	TokenFile string `toml:"token_file"`
	// MaxBundleMiB bounds an uploaded bundle, in MiB (1–4096).
	MaxBundleMiB int `toml:"max_bundle_mib"`
}

// Update configures the A/B update machinery (docs/update.md).
type Update struct {
	// Dir is where uploads arrive (Dir/incoming) and the root tools keep
	// attempts.jsonl and slots.json.
	Dir string `toml:"dir"`
	// Keyring is the CA file bundles must be signed under.
	Keyring string `toml:"keyring"`
	// Compatible is the compatible a bundle must name.
	Compatible string `toml:"compatible"`
	// Rauc is the rauc program.
	Rauc string `toml:"rauc"`
	// HealthyWithin is how long boot-check waits for possync to be healthy
	// with a committed write before it gives up on a new slot.
	HealthyWithin Duration `toml:"healthy_within"`
	// RebootCommand reboots the box after an install or a failed trial.
	RebootCommand []string `toml:"reboot_command"`
}

// MinTokenBytes is the shortest admin token accepted.
const MinTokenBytes = 16

// DefaultAdmin is the admin endpoint off, 512 MiB bundles.
func DefaultAdmin() Admin { return Admin{MaxBundleMiB: 512} }

// DefaultUpdate is the box's layout (build/update/system.conf).
func DefaultUpdate() Update {
	return Update{Dir: "/data/update", Keyring: "/etc/rauc/keyring.pem", Compatible: "possync-arm64", Rauc: "rauc",
		HealthyWithin: Duration(90 * time.Second), RebootCommand: []string{"systemctl", "reboot"}}
}

func (a Admin) validate() Errors {
	var errs Errors
	bad := func(field string, v any, msg string) {
		errs = append(errs, &FieldError{Field: field, Value: v, Msg: msg})
	}
	if a.Token != "" && a.TokenFile != "" {
		bad("admin.token", "…", "set admin.token or admin.token_file, not both")
	}
	if t := strings.TrimSpace(a.Token); a.Token != "" && len(t) < MinTokenBytes {
		// The value is not echoed: it is a secret, even when too short.
		bad("admin.token", "…", fmt.Sprintf("must be at least %d bytes (it guards installing software on the box); e.g. openssl rand -hex 24", MinTokenBytes))
	}
	if a.TokenFile != "" && !filepath.IsAbs(a.TokenFile) {
		bad("admin.token_file", a.TokenFile, "must be an absolute path")
	}
	if a.MaxBundleMiB < 1 || a.MaxBundleMiB > 4096 {
		bad("admin.max_bundle_mib", a.MaxBundleMiB, "must be from 1 to 4096")
	}
	return errs
}

func (u Update) validate() Errors {
	var errs Errors
	bad := func(field string, v any, msg string) {
		errs = append(errs, &FieldError{Field: field, Value: v, Msg: msg})
	}
	if strings.TrimSpace(u.Dir) == "" {
		bad("update.dir", u.Dir, "must name a directory")
	}
	if u.Keyring == "" {
		bad("update.keyring", u.Keyring, "must name the CA file bundles are checked against")
	}
	if u.Compatible == "" {
		bad("update.compatible", u.Compatible, "must name the compatible of this box's bundles, e.g. possync-arm64")
	}
	if u.Rauc == "" {
		bad("update.rauc", u.Rauc, "must name the rauc program")
	}
	if d := u.HealthyWithin.D(); d < 5*time.Second || d > time.Hour {
		bad("update.healthy_within", u.HealthyWithin, "must be from 5s to 1h")
	}
	if len(u.RebootCommand) == 0 || u.RebootCommand[0] == "" {
		bad("update.reboot_command", u.RebootCommand, `must name a command, e.g. ["systemctl", "reboot"]`)
	}
	return errs
}

// LoadToken returns the admin token from admin.token or admin.token_file
// (white space trimmed), or nil when the endpoint is off. A token_file that
// does not exist leaves the endpoint off (the image names a file on the
// card's FAT partition, which the shop's integrator may or may not put
// there: docs/update.md "Ways in"); TokenFileMissing tells the caller so.
// A file that exists but cannot be read, or holds a token shorter than
// MinTokenBytes, is an error.
func (a Admin) LoadToken() ([]byte, error) {
	tok := a.Token
	if a.TokenFile != "" {
		b, err := os.ReadFile(a.TokenFile)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("admin.token_file: %w", err)
		}
		tok = string(b)
	}
	// A file written on a PC (the FAT partition) may start with a UTF-8
	// byte order mark (Notepad) and end in CRLF.
	tok = strings.TrimSpace(strings.TrimPrefix(tok, "\ufeff"))
	if tok == "" && a.Token == "" && a.TokenFile == "" {
		return nil, nil
	}
	if i := strings.IndexFunc(tok, func(r rune) bool { return r < ' ' || r == 0x7f }); i >= 0 {
		return nil, fmt.Errorf("admin token (%s) must be one line without control characters (one at byte %d): no client could send it", cmpOr(a.TokenFile, "admin.token"), i)
	}
	if len(tok) < MinTokenBytes {
		return nil, fmt.Errorf("admin token (%s) must be at least %d bytes, has %d", cmpOr(a.TokenFile, "admin.token"), MinTokenBytes, len(tok))
	}
	return []byte(tok), nil
}

// TokenFileMissing reports whether admin.token_file is set but the file
// does not exist, which leaves the endpoint off.
func (a Admin) TokenFileMissing() bool {
	if a.TokenFile == "" {
		return false
	}
	_, err := os.Stat(a.TokenFile)
	return errors.Is(err, fs.ErrNotExist)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
