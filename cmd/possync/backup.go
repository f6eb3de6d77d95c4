package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"possync/storage"
)

// runBackup fetches an online backup from a running server (loopback
// only) and writes it to a file: first to a new FILE.<random>.tmp, fsynced, then linked
// to FILE, so FILE is either a whole backup or absent. Its SHA-256 goes to
// FILE.sha256 in sha256sum(1) format ("<64 hex>  <base name>"): restore
// checks it, `sha256sum -c FILE.sha256` does too, and the backup stream
// itself stays Badger's, which any earlier possync restores.
func runBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "http://127.0.0.1:8079", "running possync server")
	out := fs.String("o", "", "backup file to write (required)")
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2}
	}
	if *out == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: possync backup [-url http://127.0.0.1:8079] -o FILE")
		return &exitError{code: 2}
	}
	for _, p := range []string{*out, *out + sumSuffix} {
		if _, err := os.Lstat(p); err == nil {
			return &exitError{code: 1, err: fmt.Errorf("backup: %s exists; write to a new name (a backup never overwrites a file)", p)}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(*url, "/")+"/possync/backup", nil)
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("backup: %w", err)}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer resp.Body.Close()
	if err := checkBackupAnswer(*url, resp); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(*out), filepath.Base(*out)+".*.tmp") // a new name: never replaces a file
	if err != nil {
		return fmt.Errorf("backup: cannot write into directory %s: %w", filepath.Dir(*out), err)
	}
	tmp := f.Name()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), resp.Body)
	if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
		err = fmt.Errorf("got %d of %d bytes", n, resp.ContentLength)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(tmp, *out) // never replaces a file that appeared meanwhile
	}
	os.Remove(tmp)
	if err != nil {
		return fmt.Errorf("backup to %s: %w", *out, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if err := writeSum(*out, sum); err != nil {
		return fmt.Errorf("backup to %s: the backup is whole but its checksum file is not: %w", *out, err)
	}
	if d, err := os.Open(filepath.Dir(*out)); err == nil {
		d.Sync()
		d.Close()
	}
	fmt.Fprintf(stdout, "wrote %d bytes of backup to %s (sha256 %s in %s)\n", n, *out, sum, filepath.Base(*out+sumSuffix))
	return nil
}

// runRestore restores a backup file into an empty data directory.
func runRestore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("data", "", "empty data directory to restore into (required)")
	// The file may come before or after the flags: possync restore FILE -data DIR.
	var file string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		file, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2}
	}
	if file == "" && fs.NArg() == 1 {
		file = fs.Arg(0)
	} else if fs.NArg() > 0 {
		file = ""
	}
	if file == "" || *dir == "" {
		fmt.Fprintln(stderr, "usage: possync restore FILE -data DIR")
		return &exitError{code: 2}
	}
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer f.Close()
	verified, err := verifySum(f, file)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if verified {
		fmt.Fprintf(stdout, "%s matches its checksum %s\n", file, filepath.Base(file+sumSuffix))
	} else {
		fmt.Fprintf(stderr, "restore: no %s next to %s: the file's integrity is not verified (pre-migration copies and backups of earlier versions have none)\n", filepath.Base(file+sumSuffix), file)
	}
	rep, err := storage.Restore(*dir, f, storage.Options{})
	var oe *storage.OpenError
	if errors.As(err, &oe) && oe.Problem == storage.ProblemDamaged {
		// The store in question is the backup's, loaded in a scratch
		// directory: check-store and recover have nothing to act on.
		return &exitError{code: exitStore, err: fmt.Errorf("%w; the backup is damaged: restore another copy (nothing was changed in %s)", err, *dir)}
	}
	if err != nil {
		return storeExit(err) // exit 3 for a backup of a newer data format
	}
	fmt.Fprintf(stdout, "restored %s into %s: %d multi-sessions, %d POS, %d orders, last bus id %d\n",
		file, *dir, rep.Sessions, rep.POS, rep.Orders, rep.LastBusID)
	return nil
}

// checkBackupAnswer refuses an answer that is not a possync backup: one
// from another HTTP server (every possync names itself in the Server
// header and sends the stream as application/octet-stream), or a refusal,
// reported by its JSON-RPC message when possync sent one.
func checkBackupAnswer(url string, resp *http.Response) error {
	if resp.Header.Get("Server") != "possync" {
		return fmt.Errorf("backup: %s is not a possync server (it answered %s, server %q); -url must name the running possync, e.g. http://127.0.0.1:8079", url, resp.Status, resp.Header.Get("Server"))
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		var rpc struct {
			Error struct {
				Data struct {
					Message string `json:"message"`
				} `json:"data"`
			} `json:"error"`
		}
		if json.Unmarshal(body, &rpc) == nil && rpc.Error.Data.Message != "" {
			body = []byte(rpc.Error.Data.Message)
		}
		return fmt.Errorf("backup: %s answered %s: %s", url, resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/octet-stream" {
		return fmt.Errorf("backup: %s answered %s, not a backup stream: is it a possync server?", url, ct)
	}
	return nil
}
