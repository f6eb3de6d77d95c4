package main

import (
	"context"
	"errors"
	"io"
)

// runDiscover is replaced by the discovery work (issue 4).
func runDiscover(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return &exitError{code: 1, err: errors.New("discover: not built yet")}
}
