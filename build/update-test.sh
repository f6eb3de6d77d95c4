#!/usr/bin/env bash
# build/update-test.sh — an in-place update of the box under QEMU (issue 11).
#
#   build/update-test.sh out/possync-<v1>-arm64.img.xz out/possync-<v2>-arm64.raucb
#
# The start of the issue's test (docs/update.md, "What is tested now"):
# 1. Makes a writable copy of the image, 1 GiB larger, and puts a throwaway
#    ssh key on its FAT partition as authorized_keys (ssh comes on).
# 2. Boots it (-M virt, u-boot-qemu as -bios: boot.scr picks the slot), waits
#    for possync and ssh, writes an order; / must be the squashfs, /usr not
#    writable, no unit failed.
#    `rauc status`: slot A (rootfs.0) booted, B (rootfs.1) inactive.
# 3. Runs `rauc install` on the box with the bundle from a second disk (a
#    FAT file system attached from power-on, as a stick would be; a plain
#    virtio disk, so no USB rule reacts to it): B gets the bundle's version,
#    BOOT_ORDER becomes "B A".
# 4. Reboots the box: U-Boot must boot slot B (its console line and
#    rauc.slot=B), `rauc status` says B is booted, possync answers and the
#    order written on A is still there.
# Prints the time of every step. Exits 0 only if every check passed.
#
# Environment: BOOT_TIMEOUT (seconds for each boot, default 420), KEEP_WORK=1.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
if (($# != 2)); then
	echo "usage: build/update-test.sh IMAGE(.img.xz|.img) BUNDLE.raucb" >&2
	exit 2
fi
image=$1
bundle=$2
for f in "$image" "$bundle"; do
	[[ -f $f ]] || {
		echo "update-test.sh: no such file: $f" >&2
		exit 2
	}
done
boot_timeout=${BOOT_TIMEOUT:-420}
uboot_virt=/usr/lib/u-boot/qemu_arm64/u-boot.bin

log() { printf '[update-test %4ds] %s\n' "$SECONDS" "$*"; }
fail() {
	printf 'update-test: FAIL: %s\n' "$*" >&2
	exit 1
}

build/install-deps.sh image

work=$(mktemp -d /var/tmp/possync-update.XXXXXX)
qemu_pid=
stop_qemu() {
	if [[ -n $qemu_pid ]] && kill -0 "$qemu_pid" 2>/dev/null; then
		kill "$qemu_pid" 2>/dev/null || true
		for _ in $(seq 50); do
			kill -0 "$qemu_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$qemu_pid" 2>/dev/null || true
		wait "$qemu_pid" 2>/dev/null || true
	fi
	qemu_pid=
}
cleanup() {
	local rc=$?
	stop_qemu
	if ((rc != 0)) && [[ -f $work/serial.log ]]; then
		echo "---- last 60 lines of the serial console ($work/serial.log) ----" >&2
		tail -n 60 "$work/serial.log" >&2 || true
	fi
	if [[ ${KEEP_WORK:-} == 1 ]]; then
		echo "update-test: work directory kept: $work" >&2
	else
		rm -rf "$work"
	fi
	exit "$rc"
}
trap cleanup EXIT

# 1. Disk copy with ssh switched on.
disk=$work/disk.img
log "copying $image"
if [[ $image == *.xz ]]; then
	xz -dc "$image" | dd of="$disk" bs=1M conv=sparse iflag=fullblock status=none
else
	cp --sparse=always "$image" "$disk"
fi
truncate -s $(($(stat -c %s "$disk") + 1024 * 1048576)) "$disk"
fat_offset=$(($(sfdisk -J "$disk" | jq -r '.partitiontable.partitions[0].start') * 512))
ssh-keygen -q -t ed25519 -N '' -C possync-update-test -f "$work/id"
export MTOOLS_SKIP_CHECK=1
mcopy -i "$disk@@$fat_offset" "$work/id.pub" ::/authorized_keys
# The bundle's disk: FAT32, as big as the bundle needs.
stick=$work/stick.vfat
mkfs.vfat -F 32 -n BUNDLES -C "$stick" $(($(stat -c %s "$bundle") / 1024 + 65536)) >/dev/null
mcopy -i "$stick" "$bundle" ::/test.raucb

free_port() {
	local p
	for _ in $(seq 50); do
		p=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	fail "no free port on 127.0.0.1"
}
port=$(free_port)
ssh_port=$(free_port)
while [[ $ssh_port == "$port" ]]; do ssh_port=$(free_port); done
url=http://127.0.0.1:$port/pos_multi_session_sync/update
ssh_opts=(-i "$work/id" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
	-o LogLevel=ERROR -o ConnectTimeout=10 -o BatchMode=yes)
box() { ssh "${ssh_opts[@]}" -p "$ssh_port" root@127.0.0.1 "$@"; }

# power_on: starts QEMU; the box keeps running across its own reboots.
power_on() {
	qemu-system-aarch64 -M virt -cpu cortex-a53 -smp 2 -m 1024 -bios "$uboot_virt" -nodefaults \
		-display none -serial "file:$work/serial.log" \
		-monitor "unix:$work/monitor.sock,server=on,wait=off" \
		-drive "file=$disk,format=raw,if=virtio" -drive "file=$stick,format=raw,if=virtio,readonly=on" \
		-netdev "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:$port-:8079,hostfwd=tcp:127.0.0.1:$ssh_port-:22" \
		-device virtio-net-pci,netdev=n0,romfile= -device virtio-rng-pci &
	qemu_pid=$!
}
rpc() {
	curl -sS -m 10 -H 'Content-Type: application/json' --data-binary @- "$url" <<EOF
{"jsonrpc":"2.0","method":"call","id":$1,"params":{"multi_session_id":1,"dbname":"shop","user_ID":2,"message":$2}}
EOF
}
sync_all() {
	rpc "$1" '{"action":"sync_all","session_id":1,"login_number":1,"immediate_rerendering":true,"data":{"run_ID":1,"pos_id":1,"nonce":"sync-'"$1"'"}}'
}
# wait_box SINCE: until possync answers sync_all and ssh runs a command.
wait_box() {
	local since=$1 resp
	while true; do
		kill -0 "$qemu_pid" 2>/dev/null || fail "QEMU exited"
		if resp=$(sync_all 1 2>/dev/null) && [[ $(jq -r '.result.action' <<<"$resp" 2>/dev/null) == sync_all ]] &&
			box true 2>/dev/null; then
			echo $(($(date +%s) - since))
			return 0
		fi
		(($(date +%s) - since < boot_timeout)) || fail "the box did not answer (possync and ssh) within ${boot_timeout}s"
		sleep 2
	done
}
# console: the serial log without colour escapes, as a file (grep -q on a
# pipe would fail the pipeline under pipefail when it stops reading early).
console() {
	sed 's/\x1b\[[0-9;]*[mK]//g' "$work/serial.log" >"$work/console.txt"
	cat "$work/console.txt"
}
console_has() {
	console >/dev/null
	grep -q "$1" "$work/console.txt"
}
# rauc_json: `rauc status` on the box, with each slot's installed bundle.
rauc_json() { box rauc status --detailed --output-format=json; }

# 2. Boot slot A, write an order, look at RAUC's view.
start=$(date +%s)
power_on
log "QEMU started (pid $qemu_pid); 8079 on 127.0.0.1:$port, 22 on 127.0.0.1:$ssh_port"
t=$(wait_box "$start")
console_has 'possync-ab: booting slot A' || fail "U-Boot did not boot slot A first"
log "slot A up: possync and ssh answer ${t}s after power-on"
resp=$(rpc 3 '{"action":"update_order","session_id":1,"login_number":1,"data":{"uid":"00001-001-0001","sequence_number":1,"revision_ID":1,"run_ID":1,"pos_id":1,"nonce":"n1","lines":[],"name":"Order 00001-001-0001"}}')
[[ $(jq -r '.result.action' <<<"$resp") == update_revision_ID ]] || fail "update_order: $resp"
log "order 00001-001-0001 written on slot A"
box mount | grep -E ' on / type squashfs ' >/dev/null || fail "/ is not the squashfs: $(box mount | head -n 20)"
box touch /usr/possync-rw-test 2>/dev/null && fail "/usr is writable"
failed=$(box systemctl --failed --no-legend --plain)
[[ -z $failed ]] || fail "failed units on the read-only root: $failed"
status=$(rauc_json) || fail "rauc status on slot A: $(box rauc status 2>&1)"
log "rauc status (A): $(box rauc status 2>&1 | tr '\n' ' ' | tr -s ' ')"
[[ $(jq -r '.booted' <<<"$status") == A ]] || fail "rauc: booted slot is not A: $status"
[[ $(jq -r '.slots[] | to_entries[] | select(.key == "rootfs.1") | .value.state' <<<"$status") == inactive ]] ||
	fail "rauc: rootfs.1 (B) is not inactive: $status"

# 3. Install the bundle into B.
box 'mkdir -p /run/bundles && mount -o ro /dev/vdb /run/bundles' || fail "cannot mount the bundle disk"
t0=$(date +%s)
box rauc install /run/bundles/test.raucb >"$work/install.log" 2>&1 || fail "rauc install: $(tail -n 20 "$work/install.log")"
log "rauc install took $(($(date +%s) - t0))s: $(tail -n 1 "$work/install.log")"
status=$(rauc_json)
want_version=$(rauc info --no-verify --output-format=json "$bundle" 2>/dev/null | jq -r '.version')
got_version=$(jq -r '.slots[] | to_entries[] | select(.key == "rootfs.1") | .value.slot_status.bundle.version // empty' <<<"$status")
[[ $got_version == "$want_version" ]] || fail "rauc status: rootfs.1 has version '$got_version', want '$want_version': $status"
order=$(box fw_printenv -n BOOT_ORDER)
[[ $order == "B A" ]] || fail "BOOT_ORDER after the install is '$order', want 'B A'"
log "rauc status (after install): $(box rauc status 2>&1 | tr '\n' ' ' | tr -s ' ')"

# 4. Reboot into B.
boots_before=$(console | grep -c 'possync-ab: booting slot' || true)
t0=$(date +%s)
box systemctl reboot || true
for _ in $(seq 120); do
	(($(console | grep -c 'possync-ab: booting slot') > boots_before)) && break
	sleep 1
done
last=$(console | grep 'possync-ab: booting slot' | tail -n 1)
[[ $last == *"slot B"* ]] ||
	fail "U-Boot did not boot slot B after the install: $(console | grep 'possync-ab:' | tail -n 3)"
t=$(wait_box "$t0")
log "slot B up: possync and ssh answer ${t}s after the reboot"
last=$(console | grep 'Kernel command line:' | tail -n 1)
[[ $last == *"root=PARTUUID=50535943-03 "*"rauc.slot=B"* ]] ||
	fail "the kernel on B did not get root=PARTUUID=50535943-03 rauc.slot=B"
status=$(rauc_json)
[[ $(jq -r '.booted' <<<"$status") == B ]] || fail "rauc: booted slot is not B: $status"
resp=$(sync_all 9)
[[ $(jq -r '[.result.data.orders[].data.uid] | join(",")' <<<"$resp") == 00001-001-0001 ]] ||
	fail "the order written on A is not returned on B: $resp"
log "rauc status (B): $(box rauc status 2>&1 | tr '\n' ' ' | tr -s ' ')"
echo "update-test: PASS — installed $(basename "$bundle") into B, U-Boot booted B, the order written on A is there"
