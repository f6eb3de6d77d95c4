package storage

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Badger's read-only mode still tidies the directory it opens: replaying a
// MANIFEST cut short after its header, it deletes the table files the
// MANIFEST no longer lists (seen: check-store "OK, 0 orders" and both
// .sst files gone). So Check opens a scratch copy instead: table files
// (immutable, at most deleted) are hard links, everything else is copied,
// and the tables Badger would drop are reported.

// shadowDir is the prefix of Check's scratch copy inside the data
// directory (same file system, so table files can be hard links).
const shadowDir = ".possync-check-"

// lockDir takes Badger's own lock (an exclusive flock on the directory)
// without waiting, so Check neither reads a store a server is writing nor
// lets one start meanwhile. The returned func releases it.
func lockDir(dir string) (func(), error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("Cannot acquire directory lock on %q. Another process is using this Badger database: %w", dir, err)
		}
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

// shadowCopy makes the scratch copy of the store files in dir and returns
// its path (table files hard-linked where the file system allows, others
// copied). The copy goes into dir, or into the temporary directory when
// dir is read-only or its file system too full for it (a full card is
// when check-store is run). The caller removes it.
func shadowCopy(dir string, entries []fs.DirEntry) (string, error) {
	shadow, err := shadowCopyIn(dir, dir, entries)
	if err != nil {
		var err2 error
		if shadow, err2 = shadowCopyIn("", dir, entries); err2 != nil {
			return "", fmt.Errorf("make a scratch copy to check: %w (in %s: %w)", err, os.TempDir(), err2)
		}
	}
	return shadow, nil
}

// shadowCopyIn makes the scratch copy in a new directory in parent ("" =
// the temporary directory); on failure it removes what it made.
func shadowCopyIn(parent, dir string, entries []fs.DirEntry) (string, error) {
	shadow, err := os.MkdirTemp(parent, shadowDir)
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || isPreMigrationCopy(e.Name()) {
			continue
		}
		src, dst := filepath.Join(dir, e.Name()), filepath.Join(shadow, e.Name())
		if strings.HasSuffix(e.Name(), ".sst") {
			if os.Link(src, dst) == nil {
				continue
			}
		}
		if err := copyFile(src, dst); err != nil {
			os.RemoveAll(shadow)
			return "", err
		}
	}
	return shadow, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
