#!/usr/bin/env bash
# build/test-arm64.sh — run the Go test suite as linux/arm64 binaries under
# qemu-user emulation, so arm64-only bugs (alignment, atomics, page size
# assumptions in Badger) are caught without a Raspberry Pi.
#
#   build/test-arm64.sh [go test flags and packages]   (default: -short ./...)
#
# Registers qemu-aarch64 in binfmt_misc when missing (build/binfmt.sh), so the
# arm64 test binaries — and any subprocess they start — run directly. Where
# binfmt_misc cannot be used (unprivileged container) it falls back to
# `go test -exec qemu-aarch64-static`. No -race: the race detector needs cgo.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v go >/dev/null || PATH=$PATH:/usr/local/go/bin

exec_flag=()
if ! build/binfmt.sh; then
	command -v qemu-aarch64-static >/dev/null || {
		echo "test-arm64.sh: neither binfmt_misc nor qemu-aarch64-static is available" >&2
		exit 1
	}
	echo "test-arm64.sh: binfmt_misc unavailable, using go test -exec qemu-aarch64-static" >&2
	exec_flag=(-exec qemu-aarch64-static)
fi

args=("$@")
if ((${#args[@]} == 0)); then
	args=(-short ./...)
fi

start=$SECONDS
echo "test-arm64: GOARCH=arm64 CGO_ENABLED=0 go test ${exec_flag[*]} ${args[*]}"
GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go test "${exec_flag[@]}" "${args[@]}"
echo "test-arm64: passed in $((SECONDS - start))s"
