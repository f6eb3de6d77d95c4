package main

import (
	"context"
	"fmt"
	"io"

	"possync/appliance"
)

const usage = `possync — Sync Server for Odoo 12 pos_multi_session terminals

Usage:
  possync serve [-config FILE] [-listen ADDR] [-tls-listen ADDR] [-data DIR] [-mdns=false]
                                   run the Sync Server (defaults: :8079, ./possync-data)
  possync check-config -config FILE
                                   validate a configuration file
  possync cert [-config FILE] [-out ca.crt]
                                   write the box's CA certificate (for tills) and print its SHA-256
  possync discover [-timeout 3s] [-json]
                                   find possync boxes on the LAN
  possync simulate [-url http://127.0.0.1:8079] [-terminals 2]
                                   play POS terminals against a Sync Server and check sync
  possync check-store -data DIR    report the state of a store, read-only (exit 3: cannot be opened)
  possync recover -data DIR [-force]
                                   move a store that cannot be opened aside and start empty
  possync backup [-url http://127.0.0.1:8079] -o FILE
                                   write an online backup of the running server's store
  possync restore FILE -data DIR   restore a backup into an empty data directory
  possync update -box URL [-token-file FILE] BUNDLE
                                   upload an update bundle to a box's admin endpoint
  possync install-bundle [-config FILE] FILE
                                   (root, on the box) check and install a bundle, then reboot
  possync install-pending [-config FILE] [-mount DEV]
                                   (root) install bundles waiting in update.dir/incoming, on the
                                   card's FAT partition or on a USB stick
  possync boot-check [-config FILE]
                                   (root) after boot: mark the slot good once possync is healthy
  possync version                  print version, commit, Go version, OS/arch
`

// run dispatches a subcommand. It is the testable body of main.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return &exitError{code: 2}
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], stdout, stderr)
	case "check-config":
		return runCheckConfig(args[1:], stdout, stderr)
	case "cert":
		return runCert(args[1:], stdout, stderr)
	case "check-store":
		return runCheckStore(ctx, args[1:], stdout, stderr)
	case "backup":
		return runBackup(ctx, args[1:], stdout, stderr)
	case "restore":
		return runRestore(ctx, args[1:], stdout, stderr)
	case "recover":
		return runRecover(ctx, args[1:], stdout, stderr)
	case "discover":
		return runDiscover(ctx, args[1:], stdout, stderr)
	case "simulate":
		return runSimulate(ctx, args[1:], stdout, stderr)
	case "update":
		return runUpdate(ctx, args[1:], stdout, stderr)
	case "install-bundle":
		return runInstallBundle(ctx, args[1:], stdout, stderr)
	case "install-pending":
		return runInstallPending(ctx, args[1:], stdout, stderr)
	case "boot-check":
		return runBootCheck(ctx, args[1:], stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, appliance.VersionString())
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprintf(stderr, "possync: unknown command %q\n\n%s", args[0], usage)
		return &exitError{code: 2}
	}
}
