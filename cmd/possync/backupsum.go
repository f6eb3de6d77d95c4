package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// sumSuffix names a backup's checksum file: FILE.sha256 next to FILE.
const sumSuffix = ".sha256"

// writeSum writes sum, the hex SHA-256 of the backup file, to file.sha256
// in sha256sum(1) format ("<64 hex>  <base name>\n"), through a fsynced
// temporary file linked into place, so it never replaces a file.
func writeSum(file, sum string) error {
	path := file + sumSuffix
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = fmt.Fprintf(f, "%s  %s\n", sum, filepath.Base(file))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(tmp, path)
	}
	os.Remove(tmp)
	return err
}

// verifySum checks f, the backup file named file, against file.sha256 when
// that exists: it reads f to the end, then rewinds it. It reports false
// without an error when there is no checksum file (a backup from an
// earlier version, or one copied without it), and an error naming both
// files when the checksum file is unreadable, malformed or does not match.
func verifySum(f *os.File, file string) (bool, error) {
	path := file + sumSuffix
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read checksum file: %w", err)
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 || len(fields[0]) != sha256.Size*2 {
		return false, fmt.Errorf("%s: line 1: want \"<64 hex digits>  <file name>\" as sha256sum writes it, got %.80q", path, b)
	}
	want, err := hex.DecodeString(fields[0])
	if err != nil {
		return false, fmt.Errorf("%s: line 1: the checksum is not hex: %w", path, err)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return false, fmt.Errorf("read %s: %w", file, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return false, fmt.Errorf("read %s: %w", file, err)
	}
	if got := h.Sum(nil); string(got) != string(want) {
		return false, fmt.Errorf("%s does not match its checksum in %s (sha256 %x, want %x): the file is damaged or is another backup; restore another copy, nothing was changed",
			file, path, got, want)
	}
	return true, nil
}
