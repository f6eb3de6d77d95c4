#!/usr/bin/env bash
# build/ci-image.sh — the appliance part of CI, in order:
#
#   1. host packages (build/deps/image.txt) and qemu-aarch64 binfmt registration
#   2. build.sh --check-reproducible (linux/arm64 + linux/amd64, each built twice)
#   3. check-unit.sh: systemd-analyze verify + security (fails above 2.0)
#   4. image.sh: out/possync-<version>-arm64.img.xz + .sha256 and the signed
#      bundle out/possync-<version>-arm64.raucb
#   5. boot-test.sh on that image (QEMU boot through U-Boot, round trip, hard reset)
#   6. update-test.sh with that image as V1: bundles V2 and a broken V3 are
#      built, then installed in QEMU by every way in (docs/update.md): FAT,
#      USB stick, `possync update`; V3 rolls back; power cuts
#
# Prints the time of every step and the total. Needs root. The arm64 Go
# test run (build/test-arm64.sh) is a separate CI step.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
[[ $(id -u) == 0 ]] || {
	echo "ci-image.sh: run as root" >&2
	exit 1
}

declare -a step_names=() step_secs=()
step() {
	local name=$1 start=$SECONDS
	shift
	echo "==== ci-image: $name"
	"$@"
	step_names+=("$name")
	step_secs+=($((SECONDS - start)))
	echo "==== ci-image: $name: done in $((SECONDS - start))s"
}
summary() {
	local rc=$? i
	echo "==== ci-image: timings"
	for i in "${!step_names[@]}"; do
		printf '  %-28s %5ds\n' "${step_names[$i]}" "${step_secs[$i]}"
	done
	printf '  %-28s %5ds  (%s)\n' total "$SECONDS" "$( ((rc == 0)) && echo PASS || echo "FAIL, exit $rc")"
}
trap summary EXIT

VERSION=$(build/build.sh --print-version)
export VERSION

step "host packages" build/install-deps.sh image
step "binfmt qemu-aarch64" build/binfmt.sh
step "build.sh (reproducible)" build/build.sh --check-reproducible
step "systemd unit checks" build/check-unit.sh 2.0
step "image.sh" env POSSYNC_BIN=out/possync-linux-arm64 build/image.sh
step "boot-test.sh" build/boot-test.sh "out/possync-$VERSION-arm64.img.xz"
step "update-test.sh" build/update-test.sh "out/possync-$VERSION-arm64.img.xz"
