#!/usr/bin/env bash
# build/build.sh — static, cgo-free, reproducible possync binaries.
#
#   build/build.sh [--check-reproducible] [GOOS/GOARCH ...]
#   build/build.sh --print-version
#
# Default targets: linux/arm64 and linux/amd64, written to out/possync-<os>-<arch>.
# VERSION and COMMIT come from git (override with the environment variables of
# the same name). With --check-reproducible every target is built a second
# time from an empty build cache, and the script fails unless the sha256 sums match.
#
# Badger does not support 32-bit ARM, so there is deliberately no linux/arm target.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
out=${OUT_DIR:-$root/out}

check=false
print_version=false
targets=()
for arg in "$@"; do
	case $arg in
	--check-reproducible) check=true ;;
	--print-version) print_version=true ;;
	-h | --help)
		sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*/*) targets+=("$arg") ;;
	*)
		echo "build.sh: unknown argument $arg (want GOOS/GOARCH or --check-reproducible)" >&2
		exit 2
		;;
	esac
done
if ((${#targets[@]} == 0)); then
	targets=(linux/arm64 linux/amd64)
fi

command -v go >/dev/null || PATH=$PATH:/usr/local/go/bin
command -v go >/dev/null || {
	echo "build.sh: go not found (install Go 1.26 into /usr/local/go)" >&2
	exit 1
}

if [[ -z ${VERSION:-} ]]; then
	VERSION=$(git describe --tags --always --dirty 2>/dev/null || true)
	VERSION=${VERSION:-dev}
fi
if [[ -z ${COMMIT:-} ]]; then
	COMMIT=$(git rev-parse --short=12 HEAD 2>/dev/null || true)
	COMMIT=${COMMIT:-unknown}
	if [[ -n $(git status --porcelain --untracked-files=no 2>/dev/null) ]]; then
		COMMIT+=-dirty
	fi
fi
export VERSION COMMIT
if $print_version; then
	echo "$VERSION"
	exit 0
fi

ldflags="-s -w -buildid= -X possync/appliance.Version=$VERSION -X possync/appliance.Commit=$COMMIT"

# build GOOS GOARCH DEST: one static binary.
build() {
	CGO_ENABLED=0 GOOS=$1 GOARCH=$2 GOFLAGS=-mod=readonly \
		go build -trimpath -buildvcs=false -tags netgo,osusergo \
		-ldflags "$ldflags" -o "$3" ./cmd/possync
}

mkdir -p "$out"
for t in "${targets[@]}"; do
	goos=${t%/*} goarch=${t#*/}
	dest=$out/possync-$goos-$goarch
	start=$SECONDS
	build "$goos" "$goarch" "$dest"
	sum=$(sha256sum "$dest" | cut -d' ' -f1)
	echo "built $dest ($VERSION, $COMMIT) $(stat -c %s "$dest") bytes sha256 $sum in $((SECONDS - start))s"
	if $check; then
		tmp=$(mktemp -d)
		# A second build from an empty build cache must give the same bytes.
		GOCACHE=$tmp/cache build "$goos" "$goarch" "$tmp/possync"
		sum2=$(sha256sum "$tmp/possync" | cut -d' ' -f1)
		chmod -R u+w "$tmp" && rm -rf "$tmp"
		if [[ $sum != "$sum2" ]]; then
			echo "build.sh: $t is NOT reproducible: $sum vs $sum2" >&2
			exit 1
		fi
		echo "reproducible: $t rebuilt from a clean cache gives the same sha256 $sum"
	fi
done
