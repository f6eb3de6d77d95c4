//go:build pprof

package main

// Built only with -tags pprof (profiling, never in a release): serves
// net/http/pprof on the address in POSSYNC_PPROF (e.g. 127.0.0.1:6060),
// so a running server can be traced (/debug/pprof/trace) and profiled
// under possync-bench. See BENCHMARKS.md "Profiling".

import (
	"log/slog"
	"net/http"
	_ "net/http/pprof"
	"os"
	"runtime"
)

func init() {
	addr := os.Getenv("POSSYNC_PPROF")
	if addr == "" {
		return
	}
	runtime.MemProfileRate = 4096
	runtime.SetBlockProfileRate(10000)
	runtime.SetMutexProfileFraction(10)
	go func() {
		if err := http.ListenAndServe(addr, nil); err != nil {
			slog.Error("pprof listener", "addr", addr, "err", err)
		}
	}()
}
