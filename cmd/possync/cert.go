package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"possync/appliance/config"
	"possync/appliance/tlscert"
)

// runCert writes the local CA certificate (made now if the box has none
// yet) to -out and prints its SHA-256 fingerprint, to compare with what a
// till shows when installing it.
func runCert(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cert", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "configuration file (TOML); without it the built-in defaults are used")
	dataDir := fs.String("data", "", "data directory (overrides storage.dir)")
	out := fs.String("out", "ca.crt", "file to write the CA certificate to (PEM); - = standard output")
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2}
	}
	if fs.NArg() > 0 {
		return &exitError{code: 2, err: fmt.Errorf("cert: unexpected argument %q", fs.Arg(0))}
	}
	cfg := config.Default()
	if *configPath != "" {
		var err error
		if cfg, err = config.Load(*configPath); err != nil {
			return &exitError{code: 1, err: err}
		}
	}
	if *dataDir != "" {
		cfg.Storage.Dir = *dataDir
	}
	if !cfg.TLS.Auto {
		return &exitError{code: 1, err: fmt.Errorf("cert: tls.auto is false: the box has no local CA (HTTPS uses tls.cert_file %q)", cfg.TLS.CertFile)}
	}
	dir := tlscert.Dir(cfg.Storage.Dir)
	_, statErr := os.Stat(filepath.Join(dir, tlscert.CAFile))
	ca, err := tlscert.LoadOrCreateCA(dir, certCAName(cfg.Discovery, cfg.Storage.Dir))
	if err != nil {
		return &exitError{code: 1, err: fmt.Errorf("cert: local CA in %s: %w", dir, err)}
	}
	if errors.Is(statErr, os.ErrNotExist) {
		// A forgotten -config (on the box: /etc/possync/possync.toml) or a
		// -data other than the server's lands here: the fingerprint
		// printed below is then not the one tills see on /ca.crt.
		fmt.Fprintf(stderr, "possync cert: there was no CA in %s: made a new local CA there. "+
			"A possync already running with another data directory has its own CA: pass its -config or -data.\n", dir)
	}
	if *out == "-" {
		if _, err := stdout.Write(ca.PEM); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "SHA-256 fingerprint: %s\n", ca.Fingerprint())
		return nil
	}
	if err := os.WriteFile(*out, ca.PEM, 0o644); err != nil {
		return &exitError{code: 1, err: fmt.Errorf("cert: write %s: %w", *out, err)}
	}
	fmt.Fprintf(stdout, "wrote %s (CA %s)\nSHA-256 fingerprint: %s\n", *out, ca.Cert.Subject.CommonName, ca.Fingerprint())
	return nil
}
