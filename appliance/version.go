package appliance

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version and Commit are stamped by the build (see build/build.sh):
//
//	-ldflags "-X possync/appliance.Version=1.2.3 -X possync/appliance.Commit=abc1234"
//
// Without stamping, Commit falls back to the VCS revision Go recorded.
var (
	Version = "dev"
	Commit  = ""
)

// BuildCommit returns the stamped commit, or the VCS revision recorded by the
// Go toolchain, or "unknown".
func BuildCommit() string {
	if Commit != "" {
		return Commit
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev, dirty := "", false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" && dirty {
			rev += "-dirty"
		}
		if rev != "" {
			return rev
		}
	}
	return "unknown"
}

// VersionString is the one-line answer of `possync version`.
func VersionString() string {
	return fmt.Sprintf("possync %s (commit %s, %s, %s/%s)", Version, BuildCommit(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
