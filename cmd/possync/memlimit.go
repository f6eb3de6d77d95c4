package main

import (
	"log/slog"
	"os"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// The Go runtime collects garbage when the heap has doubled since the
// last collection (GOGC=100) and knows nothing of the box's RAM. Under a
// storm of updates (1,000/s with 200 terminals polling, BENCHMARKS.md)
// possync's RSS reached 420–450 MB with no memory limit: on a 512 MB Pi
// Zero 2 W, next to systemd and avahi, a way to the kernel's OOM killer.
// A soft limit (GOMEMLIMIT, runtime/debug.SetMemoryLimit) makes the runtime
// collect harder as the heap nears it instead of letting it double.
//
// The limit is memLimitRatio of what possync may use: the memory.max of
// its cgroup v2 (systemd's MemoryMax=) when there is one, else the
// machine's RAM. It comes from github.com/KimMachineGun/automemlimit, which
// also honours the runtime's own GOMEMLIMIT (taken as it is) and
// AUTOMEMLIMIT (another ratio, or "off").

// memLimitRatio is the share of the memory possync may use that becomes
// its soft limit. The rest is for the box's other services and for the
// page cache that Badger's reads go through.
const memLimitRatio = 0.5

// memLimitHeadroom is added to bus.max_retained_mib for the lowest limit
// set: the notifications the configuration asks to keep, plus the engine,
// Badger's memtables (2 × 8 MiB) and block cache, and requests in flight.
// A limit under the heap possync needs would make the runtime collect
// without end.
const memLimitHeadroom = 128 << 20

// setMemoryLimit sets the runtime's soft memory limit and logs it. retained
// is bus.max_retained_mib in bytes. An AUTOMEMLIMIT the library cannot
// read is logged as a warning, and possync runs without a limit.
func setMemoryLimit(retained int, logger *slog.Logger) {
	source := ""
	from := func(name string, p memlimit.Provider) memlimit.Provider {
		return func() (uint64, error) {
			l, err := p()
			if err == nil {
				source = name
			}
			return l, err
		}
	}
	floor := int64(retained) + memLimitHeadroom
	limit, err := memlimit.Set(
		memlimit.WithProvider(memlimit.ApplyFallback(
			from("memory.max of possync's cgroup", memlimit.FromCgroup),
			from("the machine's RAM", memlimit.FromSystem))),
		memlimit.WithRatio(memLimitRatio),
		memlimit.WithMin(floor),
	)
	switch {
	case err != nil:
		logger.Warn("no soft memory limit", "err", err, "fix", `AUTOMEMLIMIT takes a ratio from 0 to 1 (e.g. 0.5) or "off"`)
	case os.Getenv("GOMEMLIMIT") != "" || os.Getenv("AUTOMEMLIMIT") == "off":
		logger.Info("soft memory limit from the environment", "GOMEMLIMIT", os.Getenv("GOMEMLIMIT"), "AUTOMEMLIMIT", os.Getenv("AUTOMEMLIMIT"), "limit_mib", limit>>20)
	case source == "":
		logger.Warn("no soft memory limit: neither a cgroup memory.max nor the machine's RAM could be read")
	case limit == floor:
		logger.Warn("soft memory limit raised to bus.max_retained_mib + 128 MiB: the retention is large for this machine",
			"limit_mib", limit>>20, "bus_max_retained_mib", retained>>20, "more_than_the_share_of", source)
	default:
		logger.Info("soft memory limit", "limit_mib", limit>>20, "source", source)
	}
}
