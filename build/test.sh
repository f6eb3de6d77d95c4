#!/usr/bin/env bash
# build/test.sh — the whole possync test suite, from a fresh machine.
#
#   sudo build/test.sh            everything (what CI runs via .ci/run)
#   build/test.sh quick           gofmt, vet, unit + end-to-end tests with -race (no root)
#
# As root it installs what the suites need (Debian packages listed in
# build/deps/*.txt, binfmt for qemu-aarch64) and then runs, in order:
#   1. gofmt + go vet
#   2. go test -race ./...            unit, end-to-end HTTP, kill -9 restart tests (50 cycles, ~55 s);
#                                     the short soak again without -race (memory bounds)
#      fuzz                           each Go fuzz target for 10s (FUZZTIME=…)
#   3. discovery integration          real mDNS peers in two network namespaces
#      access control (netns)         a client at 198.51.100.2 refused, one at 192.168.77.2 served
#      real browser                   headless Chromium drives the API cross-origin (CORS) and
#                                     watches the status page; screenshots in out/test-artifacts/
#   4. systemd unit checks            systemd-analyze verify + security exposure
#      A/B boot chain                 build/update/uboot-test.sh (U-Boot's A/B script with RAUC's
#                                     boot counting, five power-ons in QEMU virt, ~1 min) and
#                                     build/update/rauc-test.sh (signed bundles accepted or refused)
#   5. arm64 test suite               under qemu-user emulation
#   6. SD-card image + QEMU boot test build/ci-image.sh
# Each step prints its duration; the script stops at the first failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
	export PATH=/usr/local/go/bin:$PATH
fi
export GOFLAGS=${GOFLAGS:-}

mode=${1:-full}
declare -a summary=()
step() {
	local name=$1
	shift
	local t0=$SECONDS
	echo
	echo "=== ${name}"
	"$@"
	summary+=("$(printf '%-32s %4ds' "$name" $((SECONDS - t0)))")
}

fmt_vet() {
	local unformatted
	unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
	if [[ -n $unformatted ]]; then
		echo "gofmt would change:" >&2
		echo "$unformatted" >&2
		return 1
	fi
	go vet ./...
	go vet -tags integration ./...
}

unit() {
	go test -race -count=1 ./...
	# The soak's memory bounds are judged without the race detector (it
	# multiplies memory): the short soak once more, ~20 s.
	go test -count=1 -run '^TestSoak$' -v ./cmd/possync/ | grep -vE '^(=== RUN|    main_test.go|time=)'
}

# fuzz runs each Go fuzz target for FUZZTIME (default 10s; about 75 s for
# the seven with compilation). The seeds, and any crasher kept under the
# package's testdata/fuzz/<Target>/, also run as plain tests in unit.
fuzz() {
	local t=${FUZZTIME:-10s} target pkg log try
	log=$(mktemp)
	for target in FuzzDecode:./storage/ FuzzUpdate:./appliance/engine/ FuzzPollParams:./appliance/engine/ FuzzSplitObject:./appliance/engine/ FuzzLinesReadable:./appliance/engine/ FuzzEnvelope:./appliance/httpapi/ FuzzSplitEnvelope:./appliance/httpapi/; do
		pkg=${target#*:}
		target=${target%%:*}
		for try in 1 2; do
			echo "--- ${target} (${pkg}, ${t})"
			if go test -count=1 -run '^$' -fuzz "^${target}\$" -fuzztime "$t" "$pkg" >"$log" 2>&1; then
				grep -E '^(fuzz: elapsed: [0-9]+s, execs|ok)' "$log" | tail -n 2
				break
			fi
			tail -n 30 "$log"
			# A failing input is written to testdata/fuzz: that is a finding,
			# never retried. A failure without one (a fuzz worker that hung
			# or was killed on a loaded machine) is tried once more.
			if [[ -n $(git status --porcelain -- "${pkg}testdata/fuzz" 2>/dev/null) || $try == 2 ]]; then
				echo "fuzz: ${target} failed" >&2
				rm -f "$log"
				return 1
			fi
			echo "fuzz: ${target} failed without a failing input; trying once more"
		done
	done
	rm -f "$log"
}

case $mode in
quick)
	step "gofmt + go vet" fmt_vet
	step "go test -race ./..." unit
	step "fuzz (10s per target)" fuzz
	;;
full)
	if [[ $(id -u) != 0 ]]; then
		echo "build/test.sh: the full suite needs root (network namespaces, apt, binfmt)." >&2
		echo "Run 'sudo build/test.sh', or 'build/test.sh quick' for the unit and end-to-end tests." >&2
		exit 2
	fi
	step "install Debian packages" build/install-deps.sh
	step "gofmt + go vet" fmt_vet
	step "go test -race ./..." unit
	step "fuzz (10s per target)" fuzz
	step "discovery integration (netns)" go test -count=1 -tags integration ./discovery/...
	step "access control (netns: public address refused, LAN served)" go test -count=1 -tags integration -run Netns -v ./appliance/httpapi/
	export POSSYNC_ARTIFACTS="${POSSYNC_ARTIFACTS:-$PWD/out/test-artifacts}"
	step "real browser (chromium: CORS, status page)" go test -count=1 -tags integration -run Browser -v ./appliance/httpapi/
	step "systemd unit checks" bash -c 'build/check-unit.sh && build/update/check-units.sh'
	step "A/B boot chain (U-Boot boot counting in QEMU virt, RAUC bundle signatures)" bash -c 'build/update/uboot-test.sh && build/update/rauc-test.sh'
	step "arm64 test suite (qemu-user)" build/test-arm64.sh
	step "SD image + QEMU boot test" build/ci-image.sh
	;;
*)
	echo "usage: build/test.sh [quick|full]" >&2
	exit 2
	;;
esac

echo
echo "=== summary"
printf '%s\n' "${summary[@]}"
echo "${#summary[@]} passed, 0 failed"
