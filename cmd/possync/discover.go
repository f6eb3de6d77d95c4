package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"possync/discovery"
)

// discoverHelp is printed when no box answers.
const discoverHelp = `no possync box answered on this network within %s.
  - Is the box powered and on the same network? Its screen or status LED shows it; the
    router's list of connected devices ("possync") shows its address.
  - Try a longer wait: possync discover -timeout 10s
  - mDNS (UDP 5353, multicast) is often blocked: guest Wi-Fi, "client/AP isolation",
    separate VLANs for tills and office, or a firewall on this computer. Connect this
    computer to the same network as the box, or type the box's IP address directly:
    http://<box-ip>:8079`

// boxJSON is one row of possync discover -json.
type boxJSON struct {
	Instance  string   `json:"instance"`
	URLs      []string `json:"urls"`
	Host      string   `json:"host"`
	Port      int      `json:"port"`
	Addresses []string `json:"addresses"`
	Version   string   `json:"version"`
	ID        string   `json:"id"`
	API       string   `json:"api"`
	Scheme    string   `json:"scheme"`
	Path      string   `json:"path"`
}

// runDiscover browses _possync._tcp for -timeout and prints every box found:
// one line each as it answers, or a JSON array at the end with -json. It
// exits 1 with advice when none answered.
func runDiscover(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("discover", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", 3*time.Second, "how long to listen for boxes")
	asJSON := fs.Bool("json", false, "print a JSON array instead of text")
	verbose := fs.Bool("v", false, "log mDNS details to stderr")
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2}
	}
	if fs.NArg() > 0 {
		return &exitError{code: 2, err: fmt.Errorf("discover: unexpected argument %q", fs.Arg(0))}
	}
	if *timeout <= 0 {
		return &exitError{code: 2, err: fmt.Errorf("discover: -timeout %s: must be positive", *timeout)}
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	b := &discovery.Browser{Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))}

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	var boxes []boxJSON
	err := b.Run(ctx, func(box discovery.Box) {
		row := toJSON(box)
		boxes = append(boxes, row)
		if !*asJSON {
			if len(boxes) == 1 {
				fmt.Fprintln(stdout, "Type one of these URLs into Odoo's POS \"Sync Server\" field:")
			}
			fmt.Fprintf(stdout, "%s  %s  version=%s  id=%s\n", row.Instance, strings.Join(row.URLs, "  "), row.Version, row.ID)
		}
	})
	if err != nil {
		return &exitError{code: 1, err: fmt.Errorf("discover: %w", err)}
	}
	if *asJSON {
		if boxes == nil {
			boxes = []boxJSON{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(boxes); err != nil {
			return fmt.Errorf("discover: write json: %w", err)
		}
	}
	if len(boxes) == 0 {
		return &exitError{code: 1, err: fmt.Errorf(discoverHelp, *timeout)}
	}
	return nil
}

func toJSON(b discovery.Box) boxJSON {
	addrs := make([]string, len(b.Addrs))
	for i, a := range b.Addrs {
		addrs[i] = a.String()
	}
	return boxJSON{
		Instance: b.Instance, URLs: b.URLs(), Host: b.Host, Port: b.Port, Addresses: addrs,
		Version: b.TXT.Version, ID: b.TXT.ID, API: b.TXT.API, Scheme: b.TXT.Scheme, Path: b.TXT.Path,
	}
}
