#!/usr/bin/env bash
# build/update-test.sh — the in-place update of issue 11, end to end, in QEMU.
#
#   build/update-test.sh                        builds V1 (image), V2 and V3 (bundles), then tests
#   build/update-test.sh V1.img.xz              V1 given (CI: the image ci-image.sh built)
#   build/update-test.sh V1.img.xz V2.raucb V3.raucb   tests given artefacts
#
# V1 is an SD-card image, V2 a good bundle of a newer version, V3 a
# deliberately broken bundle (build/update/test-broken: possync.service never
# starts, so the box is never healthy). The box boots through U-Boot and
# boot.scr on QEMU -M virt, as a Pi boots through them (docs/update.md).
#
#  1. V1 boots; orders are written.
#  2. The shop owner's way: V2 copied onto the card's FAT partition while the
#     box is off. Power on: V1 finds it, installs it into the other slot and
#     reboots into V2; the file is renamed (not installed twice).
#  3. A USB stick holding V2 is plugged into the running box (QEMU hot-plug):
#     installed into the other slot again, reboot into V2 there.
#  4. The integrator's way: `possync update -box URL -token-file F V2` to the
#     admin endpoint (a wrong token and a garbage bundle are refused first and
#     change nothing).
#  5. V3 (broken) through the admin endpoint: the box boots it, possync never
#     becomes healthy, boot-check gives up after update.healthy_within, and the
#     box comes back on V2 by itself; the status page shows the failed attempt.
#  6. Power cut while a bundle is being written: the box comes back on the slot
#     it ran.
#  7. Power cut during the first boot of a new slot: the box comes back on one
#     of the slots, working.
# After every step every order written in 1. must still be there.
#
# Environment: BOOT_TIMEOUT (seconds per boot, 420), KEEP_WORK=1,
# HEALTHY_WITHIN (seconds the V3 boot may take to fail, 90 + margin).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$PWD
boot_timeout=${BOOT_TIMEOUT:-420}
log() { printf '[update-test %4ds] %s\n' "$SECONDS" "$*"; }
fail() {
	printf 'update-test: FAIL: %s\n' "$*" >&2
	exit 1
}
[[ $(id -u) == 0 ]] || fail "run as root (image.sh and mtools on the card)"

build/install-deps.sh image update

work=$(mktemp -d "${TMPDIR:-/var/tmp}/possync-update.XXXXXX")
# shellcheck source=build/lib/qemu-box.sh
source build/lib/qemu-box.sh
cleanup() {
	local rc=$?
	stop_qemu
	if ((rc != 0)) && [[ -n ${serial:-} && -f $serial ]]; then
		echo "---- last 80 lines of the serial console ($serial) ----" >&2
		tail -n 80 "$serial" >&2 || true
	fi
	if [[ ${KEEP_WORK:-} == 1 ]]; then
		echo "update-test: work directory kept: $work" >&2
	else
		rm -rf "$work"
	fi
	exit "$rc"
}
trap cleanup EXIT

declare -a timing_names=() timing_secs=()
timed() { # NAME START
	timing_names+=("$1")
	timing_secs+=($((SECONDS - $2)))
}

# ---- 0. Artefacts.
base=$(build/build.sh --print-version)
v1_image=${1:-}
v2_bundle=${2:-}
v3_bundle=${3:-}
(($# == 0 || $# == 1 || $# == 3)) || fail "usage: build/update-test.sh [V1.img[.xz] [V2.raucb V3.raucb]]"
for f in "$@"; do [[ -f $f ]] || fail "no such file: $f"; done
if [[ -z $v1_image ]]; then
	t=$SECONDS
	OUT_DIR=$work/v1 VERSION=$base build/image.sh
	v1_image=$work/v1/possync-$base-arm64.img.xz
	timed "build V1 image" "$t"
fi
# V2 and V3 are built from this tree with other version strings, so the
# test sees which one runs (the status page's version).
if [[ -z $v2_bundle ]]; then
	t=$SECONDS
	OUT_DIR=$work/v2 VERSION=$base-u2 BUNDLE_ONLY=1 build/image.sh
	v2_bundle=$work/v2/possync-$base-u2-arm64.raucb
	timed "build V2 bundle" "$t"
	t=$SECONDS
	OUT_DIR=$work/v3 VERSION=$base-u3-broken BUNDLE_ONLY=1 POSSYNC_IMAGE_OVERLAY=build/update/test-broken/rootfs build/image.sh
	v3_bundle=$work/v3/possync-$base-u3-broken-arm64.raucb
	timed "build V3 bundle (broken)" "$t"
fi
bundle_version() { rauc info --no-verify --output-format=json "$1" 2>/dev/null | jq -r '.version'; }
v1=$(sed -nE 's/^possync-(.*)-arm64\.img(\.xz)?$/\1/p' <<<"$(basename "$v1_image")")
v2=$(bundle_version "$v2_bundle")
v3=$(bundle_version "$v3_bundle")
[[ -n $v1 && -n $v2 && -n $v3 && $v1 != "$v2" && $v2 != "$v3" ]] ||
	fail "need three different versions: V1 '$v1', V2 '$v2', V3 '$v3'"
log "V1 $v1 ($v1_image), V2 $v2, V3 $v3 (broken)"

# The integrator's client: this tree's possync for the build machine.
go build -o "$work/possync" ./cmd/possync

# ---- the card.
disk=$work/disk.img
if [[ $v1_image == *.xz ]]; then
	xz -dc "$v1_image" | dd of="$disk" bs=1M conv=sparse iflag=fullblock status=none
else
	cp --sparse=always "$v1_image" "$disk"
fi
truncate -s $(($(stat -c %s "$disk") + 1024 * 1048576)) "$disk"
fat_offset=$(($(sfdisk -J "$disk" | jq -r '.partitiontable.partitions[0].start') * 512))
export MTOOLS_SKIP_CHECK=1
fat() { # mtools COMMAND ARGS... on the card's FAT partition (box off only)
	local cmd=$1
	shift
	"$cmd" -i "$disk@@$fat_offset" "$@"
}

# The admin token for step 4 goes on the FAT partition, as a shop's
# integrator would put it (docs/update.md "Ways in").
token=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
printf '%s\n' "$token" >"$work/admin.token"
fat mcopy -o "$work/admin.token" ::/possync-admin.token

port=$(free_port)
box=http://127.0.0.1:$port
npower=0
# power_on: starts the box; every power-on has its own serial log.
power_on() {
	npower=$((npower + 1))
	serial=$work/serial-$npower.log
	: >"$serial"
	qemu-system-aarch64 -M virt,acpi=off -cpu cortex-a53 -smp 2 -m 1024 \
		-bios /usr/lib/u-boot/qemu_arm64/u-boot.bin \
		-display none -nodefaults \
		-serial "file:$serial" \
		-monitor "unix:$work/monitor.sock,server=on,wait=off" \
		-drive "file=$disk,format=raw,if=virtio" \
		-device qemu-xhci,id=xhci \
		-netdev "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:$port-:8079" \
		-device virtio-net-pci,netdev=n0,romfile= \
		-device virtio-rng-pci 2>>"$work/qemu.stderr" &
	qemu_pid=$!
	power_on_at=$SECONDS
	log "power on #$npower (QEMU pid $qemu_pid, box on $box)"
}
monitor() { printf '%s\n' "$*" | socat -t 2 - "UNIX-CONNECT:$work/monitor.sock"; }
# power_off: the power button (acpi=off in power_on: under U-Boot QEMU's
# ACPI power button is not seen), pressed again every 15 s: systemd-logind
# ignores it for its first 30 s (HoldoffTimeoutSec).
power_off() {
	for i in $(seq 180); do
		((i % 15 == 1)) && monitor system_powerdown >/dev/null
		kill -0 "$qemu_pid" 2>/dev/null || break
		sleep 1
	done
	kill -0 "$qemu_pid" 2>/dev/null && fail "the box did not power off within 180 s"
	wait "$qemu_pid" 2>/dev/null || true
	qemu_pid=
	log "powered off"
}
console() { sed 's/\x1b\[[0-9;]*[mK]//g' "$serial"; }
boots() { console | grep -c 'possync-ab: booting slot' || true; }
booted_slot() { console | sed -n 's/.*possync-ab: booting slot \([AB]\) .*/\1/p' | tail -n1; }

status_json() { curl -sS -m 5 "$box/status.json"; }
running_version() { status_json 2>/dev/null | jq -r '.version // empty' 2>/dev/null || true; }

# wait_version V [TIMEOUT]: waits until the box answers sync_all and its
# status page shows version V; prints the seconds it took.
wait_version() {
	local want=$1 limit=${2:-$boot_timeout} start=$SECONDS v
	while true; do
		kill -0 "$qemu_pid" 2>/dev/null || fail "QEMU exited while waiting for $want"
		v=$(running_version)
		if [[ $v == "$want" ]] && [[ $(sync_all 1 2>/dev/null | jq -r '.result.action' 2>/dev/null) == sync_all ]]; then
			echo $((SECONDS - start))
			return 0
		fi
		((SECONDS - start < limit)) || fail "version $want did not answer within ${limit}s (last seen: '${v:-nothing}', slot $(booted_slot))"
		sleep 2
	done
}

orders_written=()
check_orders() { # STEP
	local got missing
	got=$(sync_all 9 | jq -r '.result.data.orders[].data.uid' | sort)
	missing=$(printf '%s\n' "${orders_written[@]}" | sort | comm -23 - <(echo "$got"))
	[[ -z $missing ]] || fail "$1: orders lost: $(tr '\n' ' ' <<<"$missing")"
	log "$1: all ${#orders_written[@]} orders there"
}
last_attempt() { status_json | jq -c '.updates.last_attempt // empty'; }

# ---- 1. V1 boots; orders.
t=$SECONDS
power_on
s=$(wait_version "$v1")
log "1. V1 answered ${s}s after power-on, slot $(booted_slot)"
timed "1. boot V1" "$t"
for i in $(seq 1 5); do
	r=$(update_order $((10 + i)) "$i")
	[[ $(jq -r '.result.action' <<<"$r") == update_revision_ID ]] || fail "update_order $i: $r"
	orders_written+=("$(printf '00001-001-%04d' "$i")")
done
check_orders "1. V1"
slot_v1=$(booted_slot)

# ---- 2. V2 on the FAT partition.
t=$SECONDS
power_off
fat mcopy "$v2_bundle" ::/possync-update.raucb
power_on
s=$(wait_version "$v2")
slot=$(booted_slot)
[[ $slot != "$slot_v1" ]] || fail "2. V2 runs from slot $slot, the slot V1 ran from"
log "2. FAT: V2 answered ${s}s after power-on, from slot $slot ($(boots) U-Boot boots)"
check_orders "2. FAT"
timed "2. install V2 from the FAT partition" "$t"
slot_v2=$slot

# ---- 3. V2 on a USB stick, plugged in while the box runs.
t=$SECONDS
stick=$work/stick.img
truncate -s 600M "$stick"
mkfs.vfat -n STICK "$stick" >/dev/null
mcopy -i "$stick" "$v2_bundle" ::/possync-update.raucb
monitor "drive_add 0 if=none,id=stick,format=raw,file=$stick" >/dev/null
monitor "device_add usb-storage,id=usbstick,drive=stick,bus=xhci.0" >/dev/null
log "3. USB stick plugged in"
nb=$(boots)
for ((i = 0; i < boot_timeout; i++)); do
	(($(boots) > nb)) && break
	sleep 1
done
(($(boots) > nb)) || fail "3. the box did not reboot within ${boot_timeout}s of the USB stick"
s=$(wait_version "$v2")
slot=$(booted_slot)
[[ $slot != "$slot_v2" ]] || fail "3. after the USB install the box still runs slot $slot"
check_orders "3. USB"
monitor "device_del usbstick" >/dev/null
timed "3. install V2 from a USB stick" "$t"
slot_v2=$slot

# ---- 4. The admin endpoint.
t=$SECONDS
printf 'wrong-token-wrong-token\n' >"$work/wrong.token"
if out=$("$work/possync" update -box "$box" -token-file "$work/wrong.token" "$v2_bundle" 2>&1); then
	fail "4. a wrong token was accepted: $out"
fi
log "4. wrong token refused: $(tail -n1 <<<"$out")"
head -c 1048576 /dev/urandom >"$work/garbage.raucb"
if out=$("$work/possync" update -box "$box" -token-file "$work/admin.token" "$work/garbage.raucb" 2>&1); then
	fail "4. a garbage bundle was accepted: $out"
fi
log "4. garbage bundle refused: $(tail -n1 <<<"$out")"
[[ $(running_version) == "$v2" ]] || fail "4. a refused upload changed the running version"
nb=$(boots)
"$work/possync" update -box "$box" -token-file "$work/admin.token" "$v2_bundle" || fail "4. upload of V2 refused"
for ((i = 0; i < boot_timeout; i++)); do
	(($(boots) > nb)) && break
	sleep 1
done
(($(boots) > nb)) || fail "4. the box did not reboot within ${boot_timeout}s of the upload"
s=$(wait_version "$v2")
slot=$(booted_slot)
[[ $slot != "$slot_v2" ]] || fail "4. after the upload the box still runs slot $slot"
check_orders "4. upload"
timed "4. install V2 through possync update" "$t"
slot_v2=$slot

# ---- 5. V3, broken: the box must come back on V2 by itself.
t=$SECONDS
"$work/possync" update -box "$box" -token-file "$work/admin.token" "$v3_bundle" || fail "5. upload of V3 refused"
nb=$(boots)
for ((i = 0; i < boot_timeout; i++)); do
	(($(boots) > nb)) && break
	sleep 1
done
(($(boots) > nb)) || fail "5. the box did not reboot into V3"
log "5. V3 booting from slot $(booted_slot)"
s=$(wait_version "$v2" $((boot_timeout * 3)))
slot=$(booted_slot)
[[ $slot == "$slot_v2" ]] || fail "5. after V3 the box runs slot $slot, not V2's slot $slot_v2"
a=$(last_attempt)
log "5. back on V2 (slot $slot) ${s}s after V3 booted; last attempt: $a"
[[ $(jq -r '.version' <<<"$a") == "$v3" ]] || fail "5. the status page's last attempt is not V3's: $a"
[[ $(jq -r '.result' <<<"$a") =~ ^(failed|rolled-back)$ ]] || fail "5. V3's attempt is not shown as failed: $a"
check_orders "5. rollback"
timed "5. broken V3 rolls back to V2" "$t"

# ---- 6. Power cut while the bundle is written.
t=$SECONDS
"$work/possync" update -box "$box" -token-file "$work/admin.token" "$v2_bundle" || fail "6. upload refused"
for ((i = 0; i < 120; i++)); do
	[[ $(last_attempt | jq -r '.result' 2>/dev/null) == installing ]] && break
	sleep 0.5
done
[[ $(last_attempt | jq -r '.result' 2>/dev/null) == installing ]] || fail "6. no install in progress after the upload"
sleep 3
nb=$(boots)
monitor system_reset >/dev/null
log "6. power cut (system_reset) while installing"
for ((i = 0; i < 60; i++)); do
	(($(boots) > nb)) && break
	sleep 1
done
s=$(wait_version "$v2")
slot=$(booted_slot)
[[ $slot == "$slot_v2" ]] || fail "6. after a power cut during the install the box runs slot $slot, not $slot_v2"
check_orders "6. power cut during install"
timed "6. power cut during an install" "$t"

# ---- 7. Power cut during the first boot of the new slot.
t=$SECONDS
"$work/possync" update -box "$box" -token-file "$work/admin.token" "$v2_bundle" || fail "7. upload refused"
nb=$(boots)
for ((i = 0; i < boot_timeout; i++)); do
	(($(boots) > nb)) && break
	sleep 1
done
(($(boots) > nb)) || fail "7. no reboot after the install"
new_slot=$(booted_slot)
[[ $new_slot != "$slot_v2" ]] || fail "7. the install did not switch slots"
sleep 15
nb=$(boots)
monitor system_reset >/dev/null
log "7. power cut 15 s into the first boot of slot $new_slot"
for ((i = 0; i < 60; i++)); do
	(($(boots) > nb)) && break
	sleep 1
done
s=$(wait_version "$v2")
log "7. box back on slot $(booted_slot) ${s}s after power-on"
check_orders "7. power cut during the first boot"
timed "7. power cut during a first boot" "$t"
power_off

echo "update-test: timings"
for i in "${!timing_names[@]}"; do
	printf '  %-44s %5ds\n' "${timing_names[$i]}" "${timing_secs[$i]}"
done
echo "update-test: PASS — V1 $v1 → V2 $v2 by FAT, USB and upload; broken V3 rolled back; power cuts survived"
