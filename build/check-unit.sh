#!/usr/bin/env bash
# build/check-unit.sh — lint systemd/possync.service.
#
#   build/check-unit.sh [MAX_EXPOSURE]     (default 2.0)
#
# 1. `systemd-analyze verify` in a scratch root that holds the host's unit
#    files and a possync binary, so the check needs no installed possync and no
#    running systemd. Any diagnostic counts as a failure (verify itself exits
#    0 on mere warnings such as an unknown Type=).
# 2. `systemd-analyze security --offline=true`: fails when the overall
#    exposure is above MAX_EXPOSURE. Prints the score.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
max=${1:-2.0}
unit=systemd/possync.service

command -v systemd-analyze >/dev/null || {
	echo "check-unit.sh: systemd-analyze not found (apt-get install systemd)" >&2
	exit 1
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/usr/local/bin" "$tmp/etc/systemd/system" "$tmp/usr/lib/systemd"
cp -a /usr/lib/systemd/system "$tmp/usr/lib/systemd/"
cp "$unit" "$tmp/etc/systemd/system/possync.service"
# verify only checks that ExecStart= names an executable file.
bins=(out/possync-linux-*)
if [[ -f ${bins[0]} ]]; then
	cp "${bins[0]}" "$tmp/usr/local/bin/possync"
else
	printf '#!/bin/sh\n' >"$tmp/usr/local/bin/possync"
	chmod 0755 "$tmp/usr/local/bin/possync"
fi

if ! out=$(systemd-analyze verify --man=no --root="$tmp" possync.service 2>&1) || [[ -n $out ]]; then
	echo "check-unit.sh: systemd-analyze verify $unit failed:" >&2
	echo "$out" >&2
	exit 1
fi
echo "systemd-analyze verify $unit: OK"

report=$(systemd-analyze security --offline=true --no-pager "$unit" 2>&1) || true
line=$(grep -E 'Overall exposure level' <<<"$report" || true)
score=$(sed -nE 's/.*: ([0-9]+\.[0-9]+) .*/\1/p' <<<"$line")
if [[ -z $score ]]; then
	echo "check-unit.sh: no exposure score from systemd-analyze security:" >&2
	echo "$report" >&2
	exit 1
fi
grep -E '^✗' <<<"$report" || true
echo "systemd-analyze security $unit: ${line#*: } (limit $max)"
if awk -v s="$score" -v m="$max" 'BEGIN { exit !(s > m) }'; then
	echo "check-unit.sh: exposure $score is above $max" >&2
	exit 1
fi
