#!/usr/bin/env bash
# build/update/uboot-test.sh — prove the A/B boot chain (U-Boot + boot.cmd) under QEMU.
#
#   build/update/uboot-test.sh            # -M virt (u-boot-qemu's qemu_arm64 as -bios)
#   MACHINES="virt raspi3b" build/update/uboot-test.sh   # also -M raspi3b (u-boot-rpi's rpi_3)
#
# Builds a 256 MiB disk image laid out like the A/B card:
#   p1 FAT   boot.scr (build/update/boot.cmd via mkimage) and abstate.env
#   p2 ext4  slot A: /boot/vmlinuz, /boot/initrd.img, /boot/dtbs (Debian's arm64 kernel)
#   p3 ext4  slot B: the same kernel, another initrd
#   p4 ext4  data (untouched)
# Each slot's initrd is a busybox /init that prints "possync-test-init: SLOT=<x>"
# (the slot it was built into) and the kernel command line, then powers off.
# Each boot is one QEMU run (-no-reboot), so every run is one power-on; the
# state between runs is only what U-Boot and RAUC wrote to abstate.env. RAUC
# is Debian's rauc with build/update/system.conf, run as `rauc service` on a
# private D-Bus bus with fw_printenv/fw_setenv pointed at the image's file.
#
# Checks, per machine:
#   (a) a fresh card boots A and U-Boot creates abstate.env (A: 3 -> 2);
#   (b) after "installing into B" (`rauc status mark-active other` on A, what
#       the end of `rauc install` does: BOOT_ORDER="B A", BOOT_B_LEFT=3) B
#       boots three times and BOOT_B_LEFT goes 3 -> 2 -> 1 -> 0;
#   (c) with B never marked good, the fourth power-on boots A without help;
#   (d) from the same state as (c), `rauc status mark-good` on B (BOOT_B_LEFT=3)
#       keeps B: the next power-on boots B;
#   (e) a slot whose kernel is missing (a half-written partition) is retried
#       by U-Boot resets and given up after its 3 attempts, within ONE power-on.
# In every boot the slot that ran (SLOT= from its own initrd) must equal the
# slot U-Boot chose and rauc.slot= on the command line, and root= must name
# that slot's partition.
#
# Needs root (mkfs, dd into the image). Debian arm64 packages (the kernel,
# busybox-static, u-boot-rpi) are downloaded once with a private apt state
# into the cache: POSSYNC_UPDATE_CACHE (default /var/cache/possync-update-test).
# KEEP_WORK=1 keeps the work directory (disk, serial logs).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
repo=$PWD
cache=${POSSYNC_UPDATE_CACHE:-/var/cache/possync-update-test}
image_cache=${POSSYNC_IMAGE_CACHE:-/var/cache/possync-image}
machines=${MACHINES:-virt}
boot_timeout=${BOOT_TIMEOUT:-90}

log() { printf '[uboot-test %4ds] %s\n' "$SECONDS" "$*"; }
fail() {
	printf 'uboot-test: FAIL: %s\n' "$*" >&2
	exit 1
}
[[ $(id -u) == 0 ]] || fail "run as root"

host_pkgs=(u-boot-qemu u-boot-tools libubootenv-tool rauc squashfs-tools openssl dbus-daemon qemu-system-arm dosfstools mtools e2fsprogs fdisk cpio)
missing=()
for p in "${host_pkgs[@]}"; do
	[[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) == installed ]] || missing+=("$p")
done
if ((${#missing[@]})); then
	log "apt-get install ${missing[*]}"
	apt-get -o DPkg::Lock::Timeout=900 update -qq
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

work=$(mktemp -d /var/tmp/possync-uboot.XXXXXX)
qemu_pid=
dbus_pid=
cleanup() {
	local rc=$?
	if [[ -n $dbus_pid ]]; then
		kill "$dbus_pid" 2>/dev/null || true
	fi
	if [[ -n $qemu_pid ]] && kill -0 "$qemu_pid" 2>/dev/null; then
		kill "$qemu_pid" 2>/dev/null || true
		wait "$qemu_pid" 2>/dev/null || true
	fi
	if [[ ${KEEP_WORK:-} == 1 ]]; then
		echo "uboot-test: work directory kept: $work" >&2
	else
		rm -rf "$work"
	fi
	exit "$rc"
}
trap cleanup EXIT
export MTOOLS_SKIP_CHECK=1

# ---- arm64 packages from Debian, with a private apt state (no change to the host's apt).
apt_dir=$cache/apt
mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$cache/debs"
cat >"$apt_dir/sources.list" <<'EOF'
deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-updates main
deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main
EOF
[[ -f $apt_dir/status ]] || : >"$apt_dir/status"
apt_opts=(-o APT::Architecture=arm64 -o APT::Architectures::=arm64
	-o Dir::Etc::SourceList="$apt_dir/sources.list" -o Dir::Etc::SourceParts=/nonexistent
	-o Dir::State::Lists="$apt_dir/lists" -o Dir::State::status="$apt_dir/status"
	-o Dir::Cache="$apt_dir" -o Dir::Cache::archives="$apt_dir/archives" -o Debug::NoLocking=1
	-o APT::Sandbox::User=root)
# Refresh the package lists at most once a day.
if [[ -z $(find "$apt_dir/lists" -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -n1) ]]; then
	log "apt-get update (arm64, private state in $apt_dir)"
	apt-get "${apt_opts[@]}" update -qq
fi
# deb PKG: path of the candidate .deb of PKG, downloaded if not cached
# (the image build's deb cache is looked at first).
deb() {
	local pkg=$1 ver file
	ver=$(apt-cache "${apt_opts[@]}" policy "$pkg" | awk '$1 == "Candidate:" { print $2 }')
	[[ -n $ver && $ver != "(none)" ]] || fail "no arm64 candidate for $pkg"
	file=${pkg}_${ver/*:/}_arm64.deb
	for d in "$cache/debs" "$image_cache/debs"; do
		if [[ -f $d/$file ]]; then
			echo "$d/$file"
			return 0
		fi
	done
	(cd "$cache/debs" && apt-get "${apt_opts[@]}" download "$pkg=$ver" >/dev/null 2>&1) ||
		fail "apt-get download $pkg=$ver"
	# apt names the file with the epoch URL-encoded; give it a plain name.
	mv "$cache/debs/${pkg}_"*"${ver/*:/}_arm64.deb" "$cache/debs/$file" 2>/dev/null || true
	[[ -f $cache/debs/$file ]] || fail "download of $pkg did not produce $file"
	echo "$cache/debs/$file"
}
kpkg=$(apt-cache "${apt_opts[@]}" depends linux-image-arm64 | awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }')
[[ -n $kpkg ]] || fail "linux-image-arm64 names no kernel package"
kver=${kpkg#linux-image-}
kdeb=$(deb "$kpkg")
bbdeb=$(deb busybox-static)
kdir=$cache/kernel-$(basename "$kdeb" .deb)
if [[ ! -f $kdir/done ]]; then
	log "unpacking $(basename "$kdeb")"
	rm -rf "$kdir" "$work/k"
	mkdir -p "$kdir" "$work/k"
	dpkg-deb --fsys-tarfile "$kdeb" | tar -C "$work/k" -x ./boot "./usr/lib/linux-image-$kver/broadcom"
	cp "$work/k/boot/vmlinuz-$kver" "$kdir/vmlinuz"
	cp "$work/k/usr/lib/linux-image-$kver/broadcom/bcm2837-rpi-3-b.dtb" "$kdir/"
	touch "$kdir/done"
	rm -rf "$work/k"
fi
mkdir "$work/bb"
dpkg-deb -x "$bbdeb" "$work/bb"
log "kernel $kpkg ($(basename "$kdeb")), busybox $(basename "$bbdeb")"

# ---- the slots' initrds and file systems.
# initrd SLOT: a newc cpio (gzip) whose /init reports the slot and powers off.
make_initrd() {
	local slot=$1 d=$work/initrd-$1
	mkdir -p "$d/bin" "$d/dev" "$d/proc"
	cp "$work/bb/bin/busybox" "$d/bin/busybox"
	for a in sh mount cat poweroff; do ln -sf busybox "$d/bin/$a"; done
	mknod -m 0600 "$d/dev/console" c 5 1
	mknod -m 0600 "$d/dev/kmsg" c 1 11
	# /dev/kmsg reaches every console= (the Pi's /dev/console is tty0, HDMI).
	cat >"$d/init" <<EOF
#!/bin/sh
mount -t proc proc /proc
echo "possync-test-init: SLOT=$slot" >/dev/kmsg
echo "possync-test-init: cmdline=\$(cat /proc/cmdline)" >/dev/kmsg
poweroff -f
EOF
	chmod 0755 "$d/init"
	(cd "$d" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initrd-$slot.img"
}
# make_slotfs SLOT KERNEL: an ext4 image with the kernel, initrd and device
# trees laid out as in the real root (versioned files, /boot/vmlinuz etc. as
# symlinks). KERNEL is Debian's uncompressed Image, or its gzip (-M raspi3b:
# QEMU's emulated SD controller reads about 0.5 MiB/s, 63 s for the Image).
make_slotfs() {
	local slot=$1 kernel=$2 r=$work/root-$1
	rm -rf "$r"
	mkdir -p "$r/boot" "$r/usr/lib/linux-image-$kver/broadcom" "$r/etc"
	cp "$kernel" "$r/boot/vmlinuz-$kver"
	cp "$work/initrd-$slot.img" "$r/boot/initrd.img-$kver"
	cp "$kdir/bcm2837-rpi-3-b.dtb" "$r/usr/lib/linux-image-$kver/broadcom/"
	ln -s "vmlinuz-$kver" "$r/boot/vmlinuz"
	ln -s "initrd.img-$kver" "$r/boot/initrd.img"
	ln -s "../usr/lib/linux-image-$kver" "$r/boot/dtbs"
	echo "POSSYNC_SLOT_TEST=$slot" >"$r/etc/possync-release"
	mkfs.ext4 -q -F -L "root$slot" -d "$r" "$work/slot-$slot.ext4" 48M >/dev/null
}
make_initrd A
make_initrd B
mkimage -A arm64 -O linux -T script -C none -n possync-ab -d build/update/boot.cmd "$work/boot.scr" >/dev/null
[[ -f $kdir/vmlinuz.gz ]] || gzip -9 -n -c "$kdir/vmlinuz" >"$kdir/vmlinuz.gz"

# make_disk DISK KERNEL: the 256 MiB card (a power of two, as -M raspi3b wants).
make_disk() {
	local disk=$1 kernel=$2
	make_slotfs A "$kernel"
	make_slotfs B "$kernel"
	mkfs.vfat -F 32 -n BOOT -C "$work/boot.vfat" $((40 * 1024)) >/dev/null
	mcopy -i "$work/boot.vfat" "$work/boot.scr" ::/boot.scr
	mkfs.ext4 -q -F -L POSSYNCDATA "$work/data.ext4" 8M >/dev/null
	rm -f "$disk"
	truncate -s 256M "$disk"
	sfdisk --quiet "$disk" <<EOF
label: dos
label-id: 0x50535943
unit: sectors
start=2048, size=$((40 * 2048)), type=c, bootable
start=$((42 * 2048)), size=$((48 * 2048)), type=83
start=$((90 * 2048)), size=$((48 * 2048)), type=83
start=$((138 * 2048)), size=$((8 * 2048)), type=83
EOF
	dd if="$work/boot.vfat" of="$disk" bs=1M seek=1 conv=notrunc,sparse status=none
	dd if="$work/slot-A.ext4" of="$disk" bs=1M seek=42 conv=notrunc,sparse status=none
	dd if="$work/slot-B.ext4" of="$disk" bs=1M seek=90 conv=notrunc,sparse status=none
	dd if="$work/data.ext4" of="$disk" bs=1M seek=138 conv=notrunc,sparse status=none
	rm -f "$work/boot.vfat" "$work"/slot-?.ext4 "$work/data.ext4"
	log "disk: p1 FAT 40 MiB, p2 A 48 MiB, p3 B 48 MiB, p4 data 8 MiB; kernel $(basename "$kernel") ($(stat -c %s "$kernel") bytes)"
}
fat="@@$((2048 * 512))"

# ---- abstate.env, reached from the host exactly as from Linux: fw_printenv/fw_setenv.
echo "$work/abstate.env 0x0 0x4000" >"$work/fw_env.config"
env_pull() {
	rm -f "$work/abstate.env"
	mcopy -n -i "$disk$fat" ::/abstate.env "$work/abstate.env" 2>/dev/null || return 1
}
env_push() { mcopy -o -i "$disk$fat" "$work/abstate.env" ::/abstate.env; }
getenv() { fw_printenv -c "$work/fw_env.config" -n "$1"; }
setenv() { # NAME VALUE ...
	env_pull || fail "no abstate.env on the FAT partition"
	while (($# >= 2)); do
		fw_setenv -c "$work/fw_env.config" "$1" "$2"
		shift 2
	done
	env_push
}
state() {
	env_pull || fail "no abstate.env on the FAT partition"
	echo "BOOT_ORDER=$(getenv BOOT_ORDER) A=$(getenv BOOT_A_LEFT) B=$(getenv BOOT_B_LEFT)"
}
expect_state() { # ORDER A_LEFT B_LEFT WHY
	local got want
	got=$(state)
	want="BOOT_ORDER=$1 A=$2 B=$3"
	[[ $got == "$want" ]] || fail "$4: abstate.env says '$got', want '$want'"
}

# ---- RAUC itself changes the slot state, as on the box: `rauc service` (Debian's
# rauc, with build/update/system.conf) on a private D-Bus bus, its fw_printenv and
# fw_setenv pointed at abstate.env; `rauc status mark-active|mark-good` ask it.
mkdir -p "$work/bin" "$work/slots"
for tool in fw_printenv fw_setenv; do
	printf '#!/bin/sh\nexec /usr/bin/%s -c %q "$@"\n' "$tool" "$work/fw_env.config" >"$work/bin/$tool"
	chmod 0755 "$work/bin/$tool"
done
: >"$work/slots/A"
: >"$work/slots/B"
# The product's system.conf, with the devices, status file and keyring moved into $work.
sed -e "s|^statusfile=.*|statusfile=$work/central.raucs|" \
	-e "s|^path=.*|path=$repo/build/update/dev-keys/development-ca.cert.pem|" \
	-e "s|/dev/disk/by-partuuid/50535943-02|$work/slots/A|" \
	-e "s|/dev/disk/by-partuuid/50535943-03|$work/slots/B|" \
	build/update/system.conf >"$work/system.conf"
grep -q "^device=$work/slots/B$" "$work/system.conf" || fail "system.conf: slot devices not where expected"
cat >"$work/bus.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$work/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
EOF
# Anyone may do anything on this bus; its socket is in $work (mode 0700, root's).
dbus_pid=$(dbus-daemon --config-file="$work/bus.conf" --fork --print-pid) || fail "could not start a private dbus-daemon"
# rauc_mark BOOTED ARGS...: `rauc status ARGS` on a box running slot BOOTED.
rauc_mark() {
	local booted=$1 out svc i
	shift
	env_pull || fail "no abstate.env on the FAT partition"
	DBUS_SYSTEM_BUS_ADDRESS=unix:path=$work/bus PATH=$work/bin:$PATH \
		rauc -c "$work/system.conf" service --override-boot-slot="$booted" >>"$work/rauc-service.log" 2>&1 &
	svc=$!
	# The service needs a moment to own its bus name.
	for ((i = 0; i < 10; i++)); do
		sleep 0.5
		if out=$(DBUS_SYSTEM_BUS_ADDRESS=unix:path=$work/bus timeout 20 rauc status "$@" 2>&1); then
			break
		fi
	done
	kill "$svc" 2>/dev/null || true
	wait "$svc" 2>/dev/null || true
	((i < 10)) || fail "rauc status $*: $out (service log: $(tail -n3 "$work/rauc-service.log"))"
	env_push
	log "rauc status $* (booted $booted): $(tail -n1 <<<"$out")"
}

# ---- one power-on.
uboot_virt=/usr/lib/u-boot/qemu_arm64/u-boot.bin
uboot_rpi=
nboot=0
declare -a timings=()
# power_on MACHINE NAME: boots the disk once; the VM ends when the init powers
# off (or U-Boot resets: -no-reboot), or fails after $boot_timeout s.
power_on() {
	local machine=$1 name=$2 start end
	nboot=$((nboot + 1))
	serial=$work/$machine-$nboot-$name.log
	local -a q
	case $machine in
	virt)
		q=(qemu-system-aarch64 -M virt -cpu cortex-a53 -smp 1 -m 512 -bios "$uboot_virt"
			-drive "file=$disk,format=raw,if=virtio" -nic none -serial "file:$serial")
		;;
	raspi3b)
		q=(qemu-system-aarch64 -M raspi3b -m 1G -kernel "$uboot_rpi" -dtb "$kdir/bcm2837-rpi-3-b.dtb"
			-drive "file=$disk,format=raw,if=sd" -serial "file:$serial.uart0" -serial "file:$serial")
		;;
	esac
	start=$(date +%s.%N)
	# -no-reboot: a reset ends the run, so one run is one power-on. With
	# REBOOT_ON_RESET=1, U-Boot's own resets stay inside the run.
	[[ ${REBOOT_ON_RESET:-0} == 1 ]] || q+=(-no-reboot)
	"${q[@]}" -display none -monitor none 2>>"$work/qemu.stderr" &
	qemu_pid=$!
	local waited=0
	while kill -0 "$qemu_pid" 2>/dev/null; do
		# A Pi has no power-off: its kernel halts. End the run there.
		if grep -qE 'reboot: (System halted|Power down)' "$serial" 2>/dev/null; then
			kill "$qemu_pid" 2>/dev/null || true
			break
		fi
		if ((waited >= boot_timeout * 10)); then
			tail -n 30 "$serial" >&2 || true
			fail "$machine boot $nboot ($name): still running after ${boot_timeout}s"
		fi
		sleep 0.1
		waited=$((waited + 1))
	done
	wait "$qemu_pid" || true
	qemu_pid=
	end=$(date +%s.%N)
	boot_secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
}
# booted: the slot the initrd reported in the last power_on; checks that it
# matches U-Boot's choice, rauc.slot= and root=.
booted() {
	local log slot chosen cmdline part want_part
	log=$(tr -d '\r' <"$serial")
	slot=$(sed -n 's/.*possync-test-init: SLOT=//p' <<<"$log" | tail -n1)
	if [[ -z $slot ]]; then
		echo "---- $serial (last 25 lines)" >&2
		tail -n 25 <<<"$log" >&2
		fail "boot $nboot: no slot reported (no init ran)"
	fi
	chosen=$(sed -n 's/^possync-ab: booting slot \([AB]\) .*/\1/p' <<<"$log" | tail -n1)
	cmdline=$(sed -n 's/.*possync-test-init: cmdline=//p' <<<"$log" | tail -n1)
	[[ $chosen == "$slot" ]] || fail "boot $nboot: U-Boot chose '$chosen' but slot $slot's initrd ran"
	[[ " $cmdline " == *" rauc.slot=$slot "* ]] || fail "boot $nboot: slot $slot ran with cmdline '$cmdline'"
	part=$(sed -n 's/.*root=PARTUUID=\([0-9a-f-]*\).*/\1/p' <<<"$cmdline")
	want_part=50535943-0$([[ $slot == A ]] && echo 2 || echo 3)
	[[ $part == "$want_part" ]] || fail "boot $nboot: slot $slot booted with root=PARTUUID=$part, want $want_part"
	echo "$slot"
}
# boot_expect MACHINE NAME SLOT: one power-on that must run SLOT.
boot_expect() {
	local got
	power_on "$1" "$2"
	got=$(booted)
	[[ $got == "$3" ]] || fail "$1 boot $nboot ($2): booted $got, want $3"
	timings+=("$1 boot $nboot $2: slot $got, ${boot_secs}s")
	log "$1 boot $nboot ($2): slot $got in ${boot_secs}s; $(state)"
}

run_machine() {
	local m=$1
	disk=$work/disk-$m.img
	if [[ $m == raspi3b ]]; then
		make_disk "$disk" "$kdir/vmlinuz.gz"
	else
		make_disk "$disk" "$kdir/vmlinuz"
	fi
	log "==== -M $m"

	# (a) fresh card: no abstate.env; A boots, U-Boot writes the file.
	env_pull && fail "fresh disk already has abstate.env"
	boot_expect "$m" fresh A
	expect_state "A B" 2 3 "(a) after the first boot"

	# (b) RAUC installed into B: the end of `rauc install` marks B active.
	rauc_mark A mark-active other
	boot_expect "$m" B-try1 B
	expect_state "B A" 2 2 "(b) first boot of B"
	boot_expect "$m" B-try2 B
	expect_state "B A" 2 1 "(b) second boot of B"
	boot_expect "$m" B-try3 B
	expect_state "B A" 2 0 "(b) third boot of B"
	cp "$work/abstate.env" "$work/abstate-B-exhausted.env"

	# (c) B was never marked good: the next power-on falls back to A.
	boot_expect "$m" fallback A
	expect_state "B A" 1 0 "(c) fallback"

	# (d) same state as before (c), but B is marked good on its last try.
	cp "$work/abstate-B-exhausted.env" "$work/abstate.env"
	env_push
	rauc_mark B mark-good
	boot_expect "$m" marked-good B
	expect_state "B A" 2 2 "(d) after mark-good"

	# (e) B's kernel is missing (a half-written slot), B primary with 3 attempts:
	# U-Boot tries B three times (resetting itself) and then boots A, in one power-on.
	# Needs QEMU to reboot on reset: no -no-reboot for this run.
	debugfs -w -R "rm /boot/vmlinuz-$kver" "$disk?offset=$((90 * 1048576))" >/dev/null 2>&1 ||
		fail "could not remove B's kernel"
	setenv BOOT_ORDER "B A" BOOT_A_LEFT 3 BOOT_B_LEFT 3
	REBOOT_ON_RESET=1 boot_expect "$m" broken-B A
	expect_state "B A" 2 0 "(e) broken B"
	local resets
	resets=$(grep -c 'possync-ab: slot B did not boot: resetting' "$serial" || true)
	((resets == 3)) || fail "(e) U-Boot gave B $resets attempts, want 3"
	log "(e) U-Boot reset itself $resets times on B's missing kernel, then booted A"
}
for m in $machines; do
	case $m in
	virt) ;;
	raspi3b)
		rpideb=$(deb u-boot-rpi)
		mkdir -p "$work/rpi"
		dpkg-deb -x "$rpideb" "$work/rpi"
		# rpi_3: the Pi 3 build; RPI_UBOOT=rpi_arm64 tries the build for Pi 3, 4 and 400.
		uboot_rpi=$work/rpi/usr/lib/u-boot/${RPI_UBOOT:-rpi_3}/u-boot.bin
		[[ -f $uboot_rpi ]] || fail "no $uboot_rpi in $(basename "$rpideb")"
		log "u-boot-rpi: $(basename "$rpideb"), ${RPI_UBOOT:-rpi_3}"
		;;
	*) fail "unknown machine $m (virt, raspi3b)" ;;
	esac
	run_machine "$m"
done

echo "uboot-test: timings (QEMU start to power-off):"
printf '  %s\n' "${timings[@]}"
echo "uboot-test: PASS ($machines) in ${SECONDS}s"
