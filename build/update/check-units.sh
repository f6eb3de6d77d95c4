#!/usr/bin/env bash
# build/update/check-units.sh — lint the A/B update units in systemd/.
#
#   build/update/check-units.sh
#
# `systemd-analyze verify` of possync-boot-check.service, possync-update.path,
# possync-update.service and an instance of possync-usb-update@.service, in a
# scratch root that holds the host's unit files and a possync binary (as
# build/check-unit.sh does for possync.service). Any diagnostic fails. Then
# prints `systemd-analyze security --offline=true` for the root services (they
# run as root on purpose: rauc's D-Bus API, renames, mount, reboot; the score
# is informational). Checks the udev rule's syntax with `udevadm verify` when
# the host's udevadm has it.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
command -v systemd-analyze >/dev/null || {
	echo "check-units.sh: systemd-analyze not found (apt-get install systemd)" >&2
	exit 1
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/usr/local/bin" "$tmp/etc/systemd/system" "$tmp/usr/lib/systemd" "$tmp/etc/udev/rules.d"
cp -a /usr/lib/systemd/system "$tmp/usr/lib/systemd/"
cp systemd/possync.service systemd/possync-boot-check.service systemd/possync-update.path \
	systemd/possync-update.service systemd/possync-usb-update@.service "$tmp/etc/systemd/system/"
bins=(out/possync-linux-*)
if [[ -f ${bins[0]} ]]; then
	cp "${bins[0]}" "$tmp/usr/local/bin/possync"
else
	printf '#!/bin/sh\n' >"$tmp/usr/local/bin/possync"
	chmod 0755 "$tmp/usr/local/bin/possync"
fi
# possync-update.service's back-off runs /bin/sh.
mkdir -p "$tmp/usr/bin"
ln -s usr/bin "$tmp/bin"
cp /bin/sh "$tmp/usr/bin/sh"
units=(possync-boot-check.service possync-update.path possync-update.service possync-usb-update@sda1.service)
if ! out=$(systemd-analyze verify --man=no --root="$tmp" "${units[@]}" 2>&1) || [[ -n $out ]]; then
	echo "check-units.sh: systemd-analyze verify failed:" >&2
	echo "$out" >&2
	exit 1
fi
echo "check-units.sh: systemd-analyze verify: ${units[*]}: OK"
for u in possync-boot-check.service possync-update.service possync-usb-update@sda1.service; do
	score=$(systemd-analyze security --offline=true --root="$tmp" "$u" 2>/dev/null | tail -n1 || true)
	echo "check-units.sh: $u: ${score#→ }"
done
if udevadm verify --help >/dev/null 2>&1; then
	udevadm verify systemd/90-possync-usb-update.rules
else
	echo "check-units.sh: udevadm verify not available (systemd < 254): rule syntax not checked"
fi
