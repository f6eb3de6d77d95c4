package update

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// Rauc runs the rauc program. The zero value runs "rauc" from PATH with
// the keyring /etc/rauc/keyring.pem and expects compatible possync-arm64.
type Rauc struct {
	Path       string // the rauc program; "" = "rauc"
	Keyring    string // CA file for `rauc info --keyring=`; "" = DefaultKeyring
	Compatible string // the compatible a bundle must name; "" = DefaultCompatible
}

// Defaults shared with build/update/system.conf and image.sh.
const (
	DefaultKeyring    = "/etc/rauc/keyring.pem"
	DefaultCompatible = "possync-arm64"
)

// BundleInfo is what `rauc info --output-format=json` says about a
// bundle whose signature it verified.
type BundleInfo struct {
	Compatible  string `json:"compatible"`
	Version     string `json:"version"`
	Description string `json:"description"`
	Build       string `json:"build"`
}

// RefusedError is a bundle rauc (or the compatible check) refused; Reason
// is rauc's own words.
type RefusedError struct {
	Bundle string
	Reason string
}

func (e *RefusedError) Error() string { return "bundle " + e.Bundle + " refused: " + e.Reason }

func (r Rauc) program() string {
	if r.Path == "" {
		return "rauc"
	}
	return r.Path
}

func (r Rauc) keyring() string {
	if r.Keyring == "" {
		return DefaultKeyring
	}
	return r.Keyring
}

func (r Rauc) compatible() string {
	if r.Compatible == "" {
		return DefaultCompatible
	}
	return r.Compatible
}

// run runs rauc with args and returns its standard output; on failure the
// error holds rauc's reason (reasonOf of its output).
func (r Rauc) run(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, r.program(), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return stdout.Bytes(), nil
	case errors.As(err, &ee):
		return stdout.Bytes(), &raucError{args: args, reason: reasonOf(stdout.String() + "\n" + stderr.String())}
	default:
		return nil, fmt.Errorf("run %s %s: %w", r.program(), args[0], err)
	}
}

// raucError is a rauc run that exited non-zero.
type raucError struct {
	args   []string
	reason string
}

func (e *raucError) Error() string { return "rauc " + e.args[0] + ": " + e.reason }

// reasonOf picks rauc's reason from its output: the "LastError:" line of
// an install, else the last line that is not an informational
// "rauc-Message", progress or "… failed" echo.
func reasonOf(out string) string {
	lines := strings.Split(out, "\n")
	for _, l := range lines {
		if r, ok := strings.CutPrefix(strings.TrimSpace(l), "LastError: "); ok {
			return r
		}
	}
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		switch {
		case l == "", strings.HasPrefix(l, "rauc-Message"), strings.HasPrefix(l, "(rauc:"),
			strings.HasSuffix(l, "% Installing failed."), strings.HasPrefix(l, "Installing `") && strings.HasSuffix(l, "` failed"):
			continue
		}
		return l
	}
	return "rauc gave no reason"
}

// Info checks bundle's signature against the keyring and its compatible:
// a *RefusedError with rauc's reason when the bundle is unsigned, signed
// by another CA, truncated, tampered with or for another compatible.
// A verity bundle's payload is checked block by block during Install.
func (r Rauc) Info(ctx context.Context, bundle string) (BundleInfo, error) {
	out, err := r.run(ctx, "info", "--keyring="+r.keyring(), "--output-format=json", bundle)
	var re *raucError
	if errors.As(err, &re) {
		return BundleInfo{}, &RefusedError{Bundle: bundle, Reason: re.reason}
	}
	if err != nil {
		return BundleInfo{}, err
	}
	var bi BundleInfo
	if err := json.Unmarshal(out, &bi); err != nil {
		return BundleInfo{}, fmt.Errorf("rauc info %s: output is not JSON: %w", bundle, err)
	}
	if bi.Compatible != r.compatible() {
		return bi, &RefusedError{Bundle: bundle, Reason: fmt.Sprintf("bundle is for %q, this box takes %q", bi.Compatible, r.compatible())}
	}
	if bi.Version == "" {
		return bi, &RefusedError{Bundle: bundle, Reason: "bundle manifest names no version"}
	}
	return bi, nil
}

// CheckKeyring reports whether the keyring can be read: without it every
// bundle would be refused, by no fault of the bundle's.
func (r Rauc) CheckKeyring() error {
	f, err := os.Open(r.keyring())
	if err != nil {
		return fmt.Errorf("update.keyring: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return fmt.Errorf("update.keyring: %s is not a file", r.keyring())
	}
	return nil
}

// Install runs `rauc install bundle`: it writes the other slot and marks
// it primary. A refusal (payload damaged, wrong compatible, …) is a
// *RefusedError with rauc's reason.
func (r Rauc) Install(ctx context.Context, bundle string) error {
	_, err := r.run(ctx, "install", bundle)
	var re *raucError
	if errors.As(err, &re) {
		return &RefusedError{Bundle: bundle, Reason: re.reason}
	}
	return err
}

// Status runs `rauc status --detailed --output-format=json`.
func (r Rauc) Status(ctx context.Context) (RaucStatus, error) {
	out, err := r.run(ctx, "status", "--detailed", "--output-format=json")
	if err != nil {
		return RaucStatus{}, err
	}
	return ParseRaucStatus(out)
}

// Mark runs `rauc status mark-good|mark-bad booted`.
func (r Rauc) Mark(ctx context.Context, good bool) error {
	state := "mark-bad"
	if good {
		state = "mark-good"
	}
	_, err := r.run(ctx, "status", state, "booted")
	return err
}
