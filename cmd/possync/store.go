package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"possync/storage"
)

// exitStore is the exit code of serve, check-store and recover when the
// store cannot be opened (damaged, wrong permissions, newer format, in
// use). systemd restarts serve on it like any failure: a start right after
// a power cut may fail once, and a retry never deletes anything.
const exitStore = 3

// storeExit turns an *storage.OpenError into exit code exitStore with a
// message saying what to do.
func storeExit(err error) error {
	var oe *storage.OpenError
	if !errors.As(err, &oe) {
		return err
	}
	hint := "see 'possync check-store -data " + oe.Dir + "' and docs/the-box.md \"Recover it\""
	switch oe.Problem {
	case storage.ProblemPermission:
		hint = "give the possync user read and write access to " + oe.Dir
	case storage.ProblemInUse:
		hint = "another possync is running on this directory; stop it first"
	case storage.ProblemNotAStore:
		hint = "is -data (or data.dir) mistyped? point it at the store, or at an empty or new directory to start one"
	case storage.ProblemNewerFormat:
		hint = "run a possync that reads this format, or roll back the data: 'possync recover -data " + oe.Dir +
			"' then 'possync restore' of the pre-migration-*.backup it moved, or of a backup of your own (docs/the-box.md \"Versions of the data\")"
	case storage.ProblemMigration:
		hint = "the store was not migrated to this version's data format; see the log line above and docs/the-box.md \"Versions of the data\""
	}
	return &exitError{code: exitStore, err: fmt.Errorf("%w; %s", err, hint)}
}

func runCheckStore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check-store", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("data", "", "data directory to check (required)")
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2}
	}
	if *dir == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: possync check-store -data DIR")
		return &exitError{code: 2}
	}
	rep, err := storage.Check(ctx, *dir, nil)
	if err != nil {
		return storeExit(err)
	}
	if rep.Empty {
		fmt.Fprintf(stdout, "%s: no store (possync serve starts a new, empty one)\n", rep.Dir)
		entries, _ := os.ReadDir(*dir)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "damaged-restore-in-progress-") {
				fmt.Fprintf(stdout, "%s: left by an interrupted restore, nothing was restored: delete it and run possync restore again\n", filepath.Join(*dir, e.Name()))
			}
		}
		return nil
	}
	fmt.Fprintf(stdout, "%s: OK: %d multi-sessions, %d POS, %d orders, %d broadcasts, last bus id %d, %d KiB of tables, %d KiB of value log, data %s\n",
		rep.Dir, rep.Sessions, rep.POS, rep.Orders, rep.Bcst, rep.LastBusID, rep.LSMBytes>>10, rep.VLogBytes>>10, rep.FormatNote)
	return nil
}

// runRecover moves a store that cannot be opened aside, into a
// damaged-<time> directory inside the data directory (which may be a
// mount point, so it is never renamed itself), and leaves the data
// directory empty for serve to start afresh. Nothing is deleted.
func runRecover(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("recover", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("data", "", "data directory to recover (required)")
	force := fs.Bool("force", false, "move the store aside even if it opens")
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2}
	}
	if *dir == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: possync recover -data DIR [-force]")
		return &exitError{code: 2}
	}
	_, err := storage.Check(ctx, *dir, nil)
	var oe *storage.OpenError
	switch {
	case err == nil && !*force:
		return &exitError{code: 1, err: fmt.Errorf("%s opens fine: nothing to recover (use -force to start empty anyway)", *dir)}
	case errors.As(err, &oe) && (oe.Problem == storage.ProblemInUse || oe.Problem == storage.ProblemMissing || oe.Problem == storage.ProblemNotAStore):
		return storeExit(err) // nothing of a store to move; never move someone's files
	case errors.As(err, &oe) && oe.Problem == storage.ProblemPermission && !*force:
		return &exitError{code: 1, err: fmt.Errorf("%w; the store is not damaged: give the possync user read and write access (chown -R possync: %s) instead of recovering (or use -force to start empty anyway)", err, *dir)}
	case err != nil && !errors.As(err, &oe):
		return err
	}
	if err != nil {
		fmt.Fprintf(stdout, "%v\n", err)
	}
	entries, err := os.ReadDir(*dir)
	if err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	entries = slices.DeleteFunc(entries, func(e os.DirEntry) bool {
		return strings.HasPrefix(e.Name(), "damaged-") // earlier recoveries stay where they are
	})
	if len(entries) == 0 {
		return &exitError{code: 1, err: fmt.Errorf("%s holds no store: nothing to recover", *dir)}
	}
	aside := filepath.Join(*dir, "damaged-"+time.Now().UTC().Format("20060102T150405Z"))
	if err := os.Mkdir(aside, 0o700); err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	moved := 0
	for _, e := range entries {
		if err := os.Rename(filepath.Join(*dir, e.Name()), filepath.Join(aside, e.Name())); err != nil {
			return fmt.Errorf("recover: move %s aside: %w (%d files already in %s)", e.Name(), err, moved, aside)
		}
		moved++
	}
	fmt.Fprintf(stdout, "moved %d files of the store to %s (nothing deleted); possync serve starts empty and the tills' sync_all refill the open orders\n", moved, aside)
	return nil
}
