package main

import (
	"flag"
	"fmt"
	"io"

	"possync/appliance/config"
)

func runCheckConfig(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file to check (required)")
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2}
	}
	if *path == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: possync check-config -config FILE")
		return &exitError{code: 2}
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	if _, err := cfg.Admin.LoadToken(); err != nil {
		return &exitError{code: 1, err: fmt.Errorf("config %s: %w", *path, err)}
	}
	if cfg.Admin.TokenFileMissing() {
		fmt.Fprintf(stderr, "%s: note: admin.token_file %s does not exist: the admin endpoint is off\n", *path, cfg.Admin.TokenFile)
	}
	if err := checkTLS(cfg); err != nil {
		return &exitError{code: 1, err: fmt.Errorf("config %s: %w", *path, err)}
	}
	// A warning, not an error: the limit of the process running
	// check-config (ExecStartPre) is the unit's, but a shell's may differ.
	if p := fileLimitProblem(cfg.HTTP.MaxConns); p != "" {
		fmt.Fprintf(stderr, "%s: warning: %s\n", *path, p)
	}
	fmt.Fprintf(stdout, "%s: OK\n", *path)
	return nil
}
