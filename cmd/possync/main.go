// Command possync is the Sync Server appliance for Odoo 12 pos_multi_session.
//
//	possync serve [-config FILE] [-listen ADDR] [-data DIR] [-mdns=false]
//	possync check-config -config FILE
//	possync cert [-config FILE] [-out ca.crt]
//	possync discover [-timeout 3s] [-json]
//	possync simulate [-url http://127.0.0.1:8079] [-terminals 2]
//	possync check-store -data DIR
//	possync recover -data DIR [-force]
//	possync backup [-url http://127.0.0.1:8079] -o FILE
//	possync restore FILE -data DIR
//	possync version
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// exitError carries a process exit code; its message (if any) is printed.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

func exitCode(err error, stderr *os.File) int {
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "possync:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "possync:", err)
	return 1
}
