package main

import (
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"strconv"

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
// The limit is memLimitRatio of what possync may use: the memory limit of
// its cgroup (systemd's MemoryMax=; v2, or v1's memory.limit_in_bytes)
// when there is one, else the machine's RAM, both read by
// github.com/KimMachineGun/automemlimit. The runtime's own GOMEMLIMIT is
// taken as it is; AUTOMEMLIMIT sets another ratio, or "off".

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
// is bus.max_retained_mib in bytes. An AUTOMEMLIMIT that is not a ratio
// above 0 and at most 1 (nor "off") is logged as a warning and the default
// ratio is used: a typo in an override must not leave a small board
// without a limit.
func setMemoryLimit(retained int, logger *slog.Logger) {
	floor := int64(retained) + memLimitHeadroom
	if v := os.Getenv("GOMEMLIMIT"); v != "" {
		// The runtime parsed it at start (and refused to start on a bad one).
		limit := debug.SetMemoryLimit(-1)
		switch {
		case limit == math.MaxInt64:
			logger.Info("no soft memory limit: GOMEMLIMIT in the environment", "GOMEMLIMIT", v)
		case limit < floor:
			logger.Warn("soft memory limit from GOMEMLIMIT is below bus.max_retained_mib + 128 MiB: the garbage collector may run without end",
				"GOMEMLIMIT", v, "limit_mib", limit>>20, "want_at_least_mib", floor>>20)
		default:
			logger.Info("soft memory limit from GOMEMLIMIT in the environment", "GOMEMLIMIT", v, "limit_mib", limit>>20)
		}
		return
	}
	ratio := memLimitRatio
	if v := os.Getenv("AUTOMEMLIMIT"); v == "off" {
		logger.Info("no soft memory limit: AUTOMEMLIMIT=off in the environment")
		return
	} else if v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err == nil && r > 0 && r <= 1 {
			ratio = r
		} else {
			logger.Warn("AUTOMEMLIMIT ignored: it takes a ratio above 0 and at most 1 (e.g. 0.4) or \"off\"",
				"AUTOMEMLIMIT", v, "ratio", ratio)
		}
	}
	total, source, err := memoryAllowed()
	if err != nil {
		logger.Warn("no soft memory limit: neither a cgroup memory limit nor the machine's RAM could be read", "err", err)
		return
	}
	limit := int64(math.MaxInt64)
	if share := float64(total) * ratio; share < math.MaxInt64 {
		limit = int64(share)
	}
	if limit < floor {
		debug.SetMemoryLimit(floor)
		logger.Warn("soft memory limit raised to bus.max_retained_mib + 128 MiB: the share of the memory is smaller",
			"limit_mib", floor>>20, "bus_max_retained_mib", retained>>20, "ratio", ratio, "share_mib", limit>>20, "of", source)
		return
	}
	debug.SetMemoryLimit(limit)
	logger.Info("soft memory limit", "limit_mib", limit>>20, "ratio", ratio, "of", source)
}

// memoryAllowed returns what possync may use, in bytes, and where that
// came from: its cgroup's memory limit (v2 memory.max or v1
// memory.limit_in_bytes, the smallest on its path) if one is set, else the
// machine's RAM.
func memoryAllowed() (uint64, string, error) {
	if l, err := memlimit.FromCgroup(); err == nil {
		return l, "memory limit of possync's cgroup", nil
	}
	l, err := memlimit.FromSystem()
	if err != nil {
		return 0, "", err
	}
	return l, "the machine's RAM", nil
}
