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
	if _, err := config.Load(*path); err != nil {
		return &exitError{code: 1, err: err}
	}
	fmt.Fprintf(stdout, "%s: OK\n", *path)
	return nil
}
