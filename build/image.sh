#!/usr/bin/env bash
# build/image.sh — build the possync Raspberry Pi SD-card image.
#
#   build/image.sh
#
# Output: out/possync-<version>-arm64.img.xz (+ .sha256), the SD-card image, and
# out/possync-<version>-arm64.raucb, the signed RAUC update bundle of the same
# release (docs/update.md).
#
# Debian bookworm arm64 (mmdebstrap, run under qemu-user through binfmt) with
# the Debian kernel, raspi-firmware, U-Boot (u-boot-rpi) and RAUC, the possync
# binary from build.sh and the files under build/image/ (rootfs/ is copied over
# the root file system; initramfs/ grows the data partition at first boot and
# mounts the read-only root). Runs as root on an x86-64 Debian machine with no
# loop devices and no mounts: the partitions are made as files (mkfs.vfat -C +
# mcopy, mkfs.ext4 -d) and written into the image with dd, so it also works in
# a CI container.
#
# Card layout (MBR, disk id 0x50535943, so every Pi model's boot ROM reads it
# and PARTUUID=50535943-0N names the partitions everywhere):
#   p1  256 MiB FAT32 RASPIFIRM    Pi firmware, config.txt (kernel=u-boot.bin),
#                                  u-boot.bin, boot.scr, abstate.env -> /boot/firmware (rw);
#                                  room for an update bundle a shop owner copies onto it
#   p2  384 MiB ext4  slot A       /boot (kernel, initrd, dtbs) + root.squashfs -> /slot;
#                                  root.squashfs -> / (read-only)
#   p3  384 MiB       slot B       empty until RAUC installs the first update into it
#   p4   64 MiB ext4  POSSYNCDATA  -> /data: possync/ (bind-mounted at /var/lib/possync),
#                                  rauc/, update/, system/ (machine id, ssh key, journal)
# p4 is last and grows to the end of the card on first boot.
#
# Environment:
#   POSSYNC_IMAGE_CACHE  cache directory (default /var/cache/possync-image):
#                        debs/ (apt downloads) and base-<hash>.tar.zst (the
#                        finished base root file system, kernel and initrd
#                        included). A rebuild with a cached base only
#                        re-runs the customization and the image assembly.
#   POSSYNC_BASE_MAX_AGE_DAYS  rebuild a cached base older than this (7), to
#                        pick up Debian security updates. 0 = always rebuild.
#   DEBIAN_MIRROR, DEBIAN_SECURITY_MIRROR   archive URLs (deb.debian.org).
#   POSSYNC_BIN          use this arm64 binary instead of running build.sh.
#   XZ_LEVEL             xz preset (default 6; -T2 always).
#   SQUASHFS_ZSTD_LEVEL  zstd level of root.squashfs (default 6), SQUASHFS_PROCESSORS
#                        mksquashfs threads (default nproc).
#   POSSYNC_RAUC_KEYRING CA certificate(s) the box trusts for bundles
#                        (default: the DEVELOPMENT CA of build/update/dev-keys, with a warning).
#   POSSYNC_RAUC_CERT, POSSYNC_RAUC_KEY   signing certificate and key of the bundle
#                        (default: the development signing pair).
#   OUT_DIR              output directory (default out/).
#   BUNDLE_ONLY=1        stop after the bundle: no card image (update-test.sh's V2 and V3).
#   POSSYNC_IMAGE_OVERLAY  a directory copied over the root file system last
#                        (tests only: build/update/test-broken/rootfs).
#   VERSION              image version (default: build.sh --print-version).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$PWD

suite=bookworm
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
security_mirror=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
cache=${POSSYNC_IMAGE_CACHE:-/var/cache/possync-image}
max_age_days=${POSSYNC_BASE_MAX_AGE_DAYS:-7}
out=${OUT_DIR:-$repo/out}
xz_level=${XZ_LEVEL:-6}
squashfs_level=${SQUASHFS_ZSTD_LEVEL:-6}
squashfs_procs=${SQUASHFS_PROCESSORS:-$(nproc)}

# Packages on top of minbase. No Recommends are installed.
packages=(
	systemd-sysv udev dbus kmod iproute2 e2fsprogs fdisk zstd
	linux-image-arm64 raspi-firmware firmware-brcm80211 wireless-regdb wpasupplicant
	systemd-resolved systemd-timesyncd avahi-daemon libnss-mdns openssh-server
	rauc rauc-service libubootenv-tool u-boot-rpi dosfstools
)

# Kernel modules (trees or single .ko under /lib/modules/<version>/kernel/)
# a headless Pi appliance never loads: server NICs, RDMA, other SoCs' GPUs and
# video decoders, cameras, TV, sound cards, cluster file systems. dpkg does
# not unpack them: 148 of 292 MiB stay, the image is smaller and the
# MODULES=most initrd faster to build. Everything a Pi 3/4/Zero 2 W boots
# from or talks to the network with (mmc, usb, usb-net, genet, brcmfmac, vc4)
# stays; base-customize fails if a kept module needs an excluded one.
module_excludes=(
	drivers/media drivers/staging/media drivers/staging/vc04_services/bcm2835-camera
	drivers/gpu/drm/amd drivers/gpu/drm/radeon drivers/gpu/drm/nouveau drivers/gpu/drm/msm
	drivers/infiniband net/rds net/smc net/sunrpc/xprtrdma net/9p/9pnet_rdma.ko
	drivers/nvme/host/nvme-rdma.ko drivers/nvme/target/nvmet-rdma.ko
	drivers/net/ethernet/mellanox drivers/net/ethernet/chelsio drivers/net/ethernet/qlogic
	drivers/net/ethernet/intel drivers/net/ethernet/marvell drivers/net/ethernet/cavium
	drivers/net/ethernet/huawei drivers/net/ethernet/sfc drivers/net/ethernet/emulex
	drivers/net/ethernet/netronome drivers/net/ethernet/broadcom/bnxt
	drivers/crypto/chelsio drivers/target/iscsi/cxgbit
	drivers/net/wireless/ath drivers/net/wireless/intel drivers/net/wireless/mediatek
	drivers/net/wireless/realtek drivers/net/wireless/marvell drivers/net/wireless/ralink
	drivers/net/wireless/ti drivers/net/wireless/zydas drivers/net/wireless/atmel
	drivers/net/wireless/intersil drivers/net/wireless/quantenna drivers/net/wireless/rsi
	drivers/net/wireless/st drivers/net/wireless/microchip drivers/net/wireless/purelifi
	drivers/net/wireless/silabs
	drivers/scsi/lpfc drivers/scsi/qla2xxx drivers/scsi/qla4xxx drivers/scsi/mpt3sas
	drivers/scsi/megaraid drivers/scsi/bfa drivers/scsi/be2iscsi drivers/scsi/csiostor
	drivers/scsi/smartpqi drivers/scsi/aacraid drivers/scsi/hisi_sas drivers/scsi/cxgbi
	drivers/scsi/qedf drivers/scsi/qedi
	drivers/input/touchscreen/sur40.ko drivers/usb/gadget/function/usb_f_uvc.ko
	fs/btrfs fs/xfs fs/ocfs2 fs/gfs2 fs/ceph fs/jfs fs/nilfs2 fs/reiserfs fs/ubifs fs/orangefs
	sound/pci sound/usb sound/isa sound/firewire sound/soc/fsl
)
# ... except these, which vc4 (the Pi's HDMI console) needs: cec and rc-core.
module_includes=(
	drivers/media/cec
	drivers/media/rc/rc-core.ko
)

# MODULES=most: the initrd holds every storage and file-system driver, so
# the same image boots from SD, eMMC or USB on every supported Pi. It is the
# slowest step under emulation (see docs/the-box.md for the measured time);
# MODULES=list would be faster but can only be proven on real hardware.
initrd_modules=most

log() { printf '[image.sh %4ds] %s\n' "$SECONDS" "$*"; }
die() {
	printf 'image.sh: %s\n' "$*" >&2
	exit 1
}

# build_base DIR: the Debian root file system with kernel, initrd and
# /boot/firmware filled, but nothing of possync. Its text (declare -f) is
# part of the cache key, so editing it invalidates the cached base.
build_base() {
	local dir=$1
	# The hooks are run by mmdebstrap under sh, with the root directory as $1.
	# shellcheck disable=SC2016
	local -a opts=(
		--mode=root --arch=arm64 --variant=minbase
		--include="$(
			IFS=,
			echo "${packages[*]}"
		)"
		--aptopt='Acquire::Retries "5"'
		--dpkgopt='path-exclude=/usr/share/man/*'
		--dpkgopt='path-exclude=/usr/share/info/*'
		--dpkgopt='path-exclude=/usr/share/locale/*'
		--dpkgopt='path-exclude=/usr/share/lintian/*'
		--dpkgopt='path-exclude=/usr/share/doc/*'
		--dpkgopt='path-include=/usr/share/doc/*/copyright'
		# Keep the essential debs in /var/cache/apt/archives for sync-out.
		--skip=essential/unlink
		--setup-hook='mkdir -p "$1/var/cache/apt/archives"'
		--setup-hook="sync-in $cache/debs /var/cache/apt/archives/"
		# The kernel postinst and the initramfs-tools trigger would each build
		# the initrd under emulation: build it once, at the end.
		--essential-hook='chroot "$1" dpkg-divert --quiet --local --rename --add /usr/sbin/update-initramfs && ln -s /bin/true "$1/usr/sbin/update-initramfs"'
		--customize-hook="sync-out /var/cache/apt/archives $cache/debs"
		--customize-hook="$work/base-customize"
	)
	local m p
	for m in "${module_excludes[@]}"; do
		p=$m
		[[ $p == *.ko ]] || p+='/*'
		opts+=("--dpkgopt=path-exclude=/lib/modules/*/kernel/$p"
			"--dpkgopt=path-exclude=/usr/lib/modules/*/kernel/$p")
	done
	for m in "${module_includes[@]}"; do
		p=$m
		[[ $p == *.ko ]] || p+='/*'
		opts+=("--dpkgopt=path-include=/lib/modules/*/kernel/$p"
			"--dpkgopt=path-include=/usr/lib/modules/*/kernel/$p")
	done

	cat >"$work/base-customize" <<-EOF
		#!/bin/sh
		# Runs on the host with the new root file system as \$1.
		set -eu
		root=\$1
		# raspi-firmware's kernel hook writes config.txt and cmdline.txt from
		# these; its defaults guess from the (chroot) build host.
		# CMA=0: no cma= on the command line. The hook would only leave it out
		# for a Pi 4 it runs on, and cma=64M can keep a Pi 4 from booting.
		# The last console (HDMI) gets the boot messages; ttyS1 is the UART.
		cat >>"\$root/etc/default/raspi-firmware" <<-'CONF'
			ROOTPART=LABEL=RASPIROOT
			CONSOLES="ttyS1,115200 tty0"
			CMA=0
		CONF
		# The hook already adds fsck.repair=yes; a kernel panic reboots.
		echo 'panic=10' >"\$root/etc/default/raspi-extra-cmdline"
		# The initramfs fsck hook cannot see the root type inside a chroot.
		cat >"\$root/etc/initramfs-tools/conf.d/possync" <<-'CONF'
			MODULES=$initrd_modules
			FSTYPE=ext4
			COMPRESS=zstd
		CONF
		# Every module kept must find the modules it depends on (modinfo's
		# depends field; Debian ships no real System.map for depmod -e).
		for moddir in "\$root"/lib/modules/*/; do
			find "\$moddir" -name '*.ko*' | sed -e 's|.*/||' -e 's|\.ko.*||' -e 's|-|_|g' | sort -u >"\$root/tmp/have"
			find "\$moddir" -name '*.ko*' -print0 | xargs -0 modinfo -F depends | tr ',' '\n' |
				sed -e '/^\$/d' -e 's|-|_|g' | sort -u >"\$root/tmp/need"
			missing=\$(comm -13 "\$root/tmp/have" "\$root/tmp/need")
			rm -f "\$root/tmp/have" "\$root/tmp/need"
			if [ -n "\$missing" ]; then
				echo "base-customize: excluded kernel modules are needed by kept ones:" \$missing >&2
				exit 1
			fi
		done
		# First-boot growth of the data partition runs from the initrd.
		install -m 0755 "$repo/build/image/initramfs/possync-growdata" "\$root/usr/local/sbin/possync-growdata"
		install -m 0755 "$repo/build/image/initramfs/hooks/possync-growdata" "\$root/etc/initramfs-tools/hooks/possync-growdata"
		install -m 0755 "$repo/build/image/initramfs/scripts/local-premount/possync-growdata" \
			"\$root/etc/initramfs-tools/scripts/local-premount/possync-growdata"
		# The read-only root: the slot's root.squashfs becomes /, p4 /data.
		install -m 0755 "$repo/build/image/initramfs/hooks/possync-root" "\$root/etc/initramfs-tools/hooks/possync-root"
		install -D -m 0755 "$repo/build/image/initramfs/scripts/local-bottom/possync-root" \
			"\$root/etc/initramfs-tools/scripts/local-bottom/possync-root"
		rm -f "\$root/usr/sbin/update-initramfs"
		chroot "\$root" dpkg-divert --quiet --local --rename --remove /usr/sbin/update-initramfs
		start=\$(date +%s)
		chroot "\$root" update-initramfs -c -k all
		echo "base-customize: update-initramfs (MODULES=$initrd_modules) took \$((\$(date +%s) - start))s"
	EOF
	chmod 0755 "$work/base-customize"

	mkdir -p "$cache/debs"
	mmdebstrap "${opts[@]}" "$suite" "$dir" \
		"deb $mirror $suite main non-free-firmware" \
		"deb $mirror $suite-updates main non-free-firmware" \
		"deb $security_mirror $suite-security main non-free-firmware"
	if ! compgen -G "$dir/boot/firmware/vmlinuz-*" >/dev/null ||
		! compgen -G "$dir/boot/firmware/initrd.img-*" >/dev/null ||
		[[ ! -f $dir/boot/firmware/config.txt || ! -f $dir/boot/firmware/cmdline.txt ]]; then
		die "raspi-firmware did not fill /boot/firmware"
	fi
}

# base_key: hash of everything that defines the base root file system.
base_key() {
	{
		declare -f build_base
		cat build/image/initramfs/possync-growdata build/image/initramfs/hooks/possync-growdata \
			build/image/initramfs/scripts/local-premount/possync-growdata \
			build/image/initramfs/hooks/possync-root build/image/initramfs/scripts/local-bottom/possync-root
		printf '%s\n' "$suite" "$mirror" "$security_mirror" "$initrd_modules" \
			"${packages[@]}" "${module_excludes[@]}" "${module_includes[@]}"
		mmdebstrap --version
	} | sha256sum | cut -c1-16
}

cleanup() {
	if [[ -n ${work:-} && -d $work ]]; then
		# An interrupted mmdebstrap can leave /proc, /sys or /dev mounted in
		# the root: never recurse into those.
		local m
		while read -r m; do
			umount -l "$m" 2>/dev/null || true
		done < <(findmnt -rn -o TARGET | grep -F "$work/" | sort -r)
		if findmnt -rn -o TARGET | grep -qF "$work/"; then
			echo "image.sh: file systems still mounted under $work; not deleting it" >&2
		else
			rm -rf "$work"
		fi
	fi
}

[[ $(id -u) == 0 ]] || die "run as root (mmdebstrap --mode=root, file ownership in the image)"
[[ $(uname -m) == x86_64 || $(uname -m) == aarch64 ]] || die "unsupported build host $(uname -m)"

log "host packages"
build/install-deps.sh image
if [[ $(uname -m) != aarch64 ]]; then
	build/binfmt.sh
fi

work=$(mktemp -d "${TMPDIR:-/var/tmp}/possync-image.XXXXXX")
trap cleanup EXIT
export MTOOLS_SKIP_CHECK=1

version=${VERSION:-$(build/build.sh --print-version)}
image_name=possync-$version-arm64.img
bundle_name=possync-$version-arm64.raucb
dev_keys=$repo/build/update/dev-keys
rauc_keyring=${POSSYNC_RAUC_KEYRING:-$dev_keys/development-ca.cert.pem}
rauc_cert=${POSSYNC_RAUC_CERT:-$dev_keys/development-signing.cert.pem}
rauc_key=${POSSYNC_RAUC_KEY:-$dev_keys/development-signing.key.pem}
for f in "$rauc_keyring" "$rauc_cert" "$rauc_key"; do
	[[ -f $f ]] || die "no such file: $f (POSSYNC_RAUC_KEYRING, POSSYNC_RAUC_CERT, POSSYNC_RAUC_KEY)"
done
mkdir -p "$out" "$cache"

# 1. possync binary.
if [[ -n ${POSSYNC_BIN:-} ]]; then
	bin=$POSSYNC_BIN
else
	log "possync binary (build.sh linux/arm64)"
	VERSION=$version build/build.sh linux/arm64
	bin=$out/possync-linux-arm64
fi
file_type=$(od -An -tx1 -j16 -N4 "$bin" | tr -d ' ')
[[ $file_type == 0200b700 ]] || die "$bin is not a linux/arm64 executable"

# 2. Base root file system: from the cache, or built with mmdebstrap.
root=$work/root
key=$(base_key)
base_tar=$cache/base-$key.tar.zst
if [[ -f $base_tar ]] && ((max_age_days > 0)) &&
	[[ -n $(find "$base_tar" -mtime "-$max_age_days") ]]; then
	log "base root file system from cache: $base_tar"
	mkdir "$root"
	tar -C "$root" --numeric-owner --xattrs --xattrs-include='*' -I zstd -xf "$base_tar"
else
	log "base root file system: mmdebstrap $suite arm64 (cache key $key; takes minutes)"
	base_start=$SECONDS
	build_base "$root"
	log "mmdebstrap done in $((SECONDS - base_start))s; caching as $base_tar"
	rm -f "$cache"/base-*.tar.zst
	tar -C "$root" --numeric-owner --xattrs --xattrs-include='*' -I 'zstd -T2 -3' \
		-cf "$base_tar.tmp" .
	mv "$base_tar.tmp" "$base_tar"
fi

# 3. Customization: possync and the appliance configuration.
log "customizing"
install -m 0755 "$bin" "$root/usr/local/bin/possync"
install -m 0644 systemd/possync.service "$root/etc/systemd/system/possync.service"
install -D -m 0644 systemd/possync.sysusers "$root/usr/lib/sysusers.d/possync.conf"
systemd-sysusers --root="$root" "$root/usr/lib/sysusers.d/possync.conf"
install -d -m 0755 "$root/etc/possync" "$root/var/lib/possync" "$root/usr/share/doc/possync"
# The example config with the box's paths: storage.dir (only in [storage]:
# [update] has a dir too) and the admin token on the FAT partition, where an
# integrator puts it (a missing file leaves the endpoint off).
awk '
	/^\[/ { section = $0 }
	section == "[storage]" && /^dir = / { $0 = "dir = \"/var/lib/possync\"" }
	section == "[admin]" && /^token_file = / { $0 = "token_file = \"/boot/firmware/possync-admin.token\"" }
	{ print }
' testdata/possync.example.toml >"$root/etc/possync/possync.toml"
grep -q '^dir = "/var/lib/possync"$' "$root/etc/possync/possync.toml" ||
	die "could not set storage.dir in the default config"
grep -q '^dir = "/data/update"$' "$root/etc/possync/possync.toml" ||
	die "update.dir is not /data/update in the default config"
grep -q '^token_file = "/boot/firmware/possync-admin.token"$' "$root/etc/possync/possync.toml" ||
	die "could not set admin.token_file in the default config"
chmod 0644 "$root/etc/possync/possync.toml"
for doc in the-box.md update.md; do
	if [[ -f docs/$doc ]]; then
		install -m 0644 "docs/$doc" "$root/usr/share/doc/possync/$doc"
	fi
done
# Validate the shipped config with the shipped binary (runs through binfmt).
"$bin" check-config -config "$root/etc/possync/possync.toml"
printf 'POSSYNC_VERSION=%s\nPOSSYNC_BUILT=%s\n' "$version" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
	>"$root/etc/possync-release"

cp -r --no-preserve=ownership build/image/rootfs/. "$root/"
if [[ -n ${POSSYNC_IMAGE_OVERLAY:-} ]]; then
	# Tests only (build/update-test.sh's broken release): copied over last.
	[[ -d $POSSYNC_IMAGE_OVERLAY ]] || die "POSSYNC_IMAGE_OVERLAY: no such directory: $POSSYNC_IMAGE_OVERLAY"
	log "WARNING: overlay $POSSYNC_IMAGE_OVERLAY copied over the root file system"
	cp -r --no-preserve=ownership "$POSSYNC_IMAGE_OVERLAY/." "$root/"
fi
ln -sf ../run/systemd/resolve/stub-resolv.conf "$root/etc/resolv.conf"

# The update units (docs/update.md): every systemd/possync-*.service, .path
# and udev rule that exists is installed; the boot check and the watch on
# the incoming bundles are enabled (the USB unit is a template the rule starts).
update_units=()
for unit in systemd/possync-*.service systemd/possync-*.path; do
	[[ -f $unit ]] || continue
	install -m 0644 "$unit" "$root/etc/systemd/system/${unit##*/}"
	update_units+=("${unit##*/}")
done
for rule in systemd/*.rules; do
	[[ -f $rule ]] || continue
	install -m 0644 "$rule" "$root/etc/udev/rules.d/${rule##*/}"
done
enable_units=()
for unit in possync-boot-check.service possync-update.path; do
	if [[ -f $root/etc/systemd/system/$unit ]]; then
		enable_units+=("$unit")
	else
		log "WARNING: systemd/$unit does not exist yet: the image has no $unit"
	fi
done

# RAUC: system.conf, the keyring the box trusts, fw_env.config for its
# U-Boot backend (abstate.env on the FAT partition, see boot.cmd).
install -D -m 0644 build/update/system.conf "$root/etc/rauc/system.conf"
if [[ $rauc_keyring == "$dev_keys/development-ca.cert.pem" ]]; then
	log "WARNING: ************************************************************************"
	log "WARNING: this image trusts the DEVELOPMENT CA (build/update/dev-keys), whose private"
	log "WARNING: key is public: anyone can sign a bundle it installs. Not for shops."
	log "WARNING: Set POSSYNC_RAUC_KEYRING (and POSSYNC_RAUC_CERT/POSSYNC_RAUC_KEY) for a release."
	log "WARNING: ************************************************************************"
fi
install -m 0644 "$rauc_keyring" "$root/etc/rauc/keyring.pem"
echo '/boot/firmware/abstate.env 0x0 0x4000' >"$root/etc/fw_env.config"

# The root is a read-only squashfs (initramfs/scripts/local-bottom/possync-root
# mounts it and the data partition). Writable: tmpfs, or directories on /data.
cat >"$root/etc/fstab" <<'EOF'
# / is the slot's root.squashfs (read-only), the slot itself is at /slot and
# the data partition at /data: both mounted by the initramfs (possync-root).
# <file system>         <mount point>      <type> <options>                                                  <dump> <pass>
LABEL=RASPIFIRM         /boot/firmware     vfat   rw,noatime,nofail,x-systemd.device-timeout=2min            0      2
LABEL=POSSYNCDATA       /data              ext4   rw,noatime,nodev,nosuid,noexec,nofail,x-systemd.growfs     0      0
/data/possync           /var/lib/possync   none   bind,nofail                                                0      0
/data/system/log        /var/log           none   bind,nofail                                                0      0
/data/system/systemd    /var/lib/systemd   none   bind,nofail                                                0      0
tmpfs                   /tmp               tmpfs  mode=1777,nosuid,nodev,size=64M                            0      0
tmpfs                   /var/tmp           tmpfs  mode=1777,nosuid,nodev,size=16M                            0      0
tmpfs                   /root              tmpfs  mode=0700,nosuid,nodev,size=1M                             0      0
EOF
# A machine id (bind-mounted from /data/system/machine-id by the initramfs)
# and ssh host keys (/data/system/ssh) are made on each box's first boot.
: >"$root/etc/machine-id"
rm -f "$root"/etc/ssh/ssh_host_*
install -d -m 0755 "$root/slot" "$root/data"
systemctl --root="$root" enable possync.service possync-ssh.service \
	systemd-networkd.service systemd-resolved.service systemd-timesyncd.service avahi-daemon.service \
	"${enable_units[@]}"
# ssh is off until /boot/firmware/authorized_keys exists (possync-ssh.service).
systemctl --root="$root" disable ssh.service ssh.socket 2>/dev/null || true
# Wi-Fi runs as wpa_supplicant@wlan0 (udev rule), not the D-Bus daemon.
systemctl --root="$root" disable wpa_supplicant.service
systemctl --root="$root" is-enabled ssh.service >/dev/null 2>&1 && die "ssh.service is still enabled"

if ! verify=$(systemd-analyze verify --man=no --root="$root" possync.service possync-ssh.service "${update_units[@]}" 2>&1) ||
	[[ -n $verify ]]; then
	die "systemd-analyze verify in the image root: $verify"
fi

# 4. Slot contents: /boot (kernel, initrd, device trees: what U-Boot loads)
#    and root.squashfs (everything else).
log "slot contents"
slotdir=$work/slot
fw=$work/firmware
mkdir -p "$slotdir/boot/dtbs" "$fw"
kver=$(basename "$(echo "$root"/lib/modules/*)")
[[ -f $root/boot/vmlinuz-$kver && -f $root/boot/initrd.img-$kver ]] || die "no kernel or initrd for $kver in /boot"
# gzip: U-Boot's booti unpacks it; a third of the size to read from the SD card.
gzip -6 -n -c "$root/boot/vmlinuz-$kver" >"$slotdir/boot/vmlinuz-$kver"
cp "$root/boot/initrd.img-$kver" "$root/boot/config-$kver" "$slotdir/boot/"
ln -s "vmlinuz-$kver" "$slotdir/boot/vmlinuz"
ln -s "initrd.img-$kver" "$slotdir/boot/initrd.img"
# U-Boot's ${fdtfile} is broadcom/bcm27xx-…dtb on the Pi.
cp -r "$root/usr/lib/linux-image-$kver/broadcom" "$slotdir/boot/dtbs/"
echo "$version" >"$slotdir/boot/possync-version"
# The Pi firmware (p1): what raspi-firmware put in /boot/firmware, minus its
# copies of kernel and initrd and its config.txt/cmdline.txt; U-Boot instead.
cp -a "$root/boot/firmware/." "$fw/"
rm -f "$fw"/vmlinuz-* "$fw"/initrd.img-* "$fw/cmdline.txt" "$fw/config.txt"
install -m 0644 "$root/usr/lib/u-boot/rpi_arm64/u-boot.bin" "$fw/u-boot.bin"
cat >"$fw/config.txt" <<'EOF'
# possync: the Pi firmware starts U-Boot (Debian u-boot-rpi, rpi_arm64: Pi 3,
# 4, 400, Zero 2 W), which runs boot.scr (build/update/boot.cmd) and boots
# slot A or B of the card. See /usr/share/doc/possync/update.md.
arm_64bit=1
enable_uart=1
upstream_kernel=1
kernel=u-boot.bin
EOF
mkimage -A arm64 -O linux -T script -C none -n possync-ab -d build/update/boot.cmd "$fw/boot.scr" >/dev/null
find "$root/boot" -mindepth 1 -delete
install -d -m 0755 "$root/boot/firmware"
rm -rf "$root/usr/lib/linux-image-$kver"

log "mksquashfs (zstd level $squashfs_level, $squashfs_procs processors)"
sq_start=$SECONDS
mksquashfs "$root" "$slotdir/root.squashfs" -noappend -quiet -no-progress -comp zstd \
	-Xcompression-level "$squashfs_level" -processors "$squashfs_procs" >/dev/null
root_used_mib=$(du -sm "$root" | cut -f1)
log "root.squashfs: $(($(stat -c %s "$slotdir/root.squashfs") / 1048576)) MiB from $root_used_mib MiB in $((SECONDS - sq_start))s"

# 5. The update bundle: the slot as a tar (RAUC makes an ext4 slot from it).
log "bundle $bundle_name"
bundle_start=$SECONDS
mkdir "$work/bundle"
tar -C "$slotdir" --numeric-owner -cf "$work/bundle/root.tar" .
cat >"$work/bundle/manifest.raucm" <<EOF
[update]
compatible=possync-arm64
version=$version

[bundle]
format=verity

[image.rootfs]
filename=root.tar
EOF
rm -f "$out"/possync-*-arm64.raucb
# The payload is compressed already (squashfs, gzip kernel, zstd initrd).
rauc bundle --cert="$rauc_cert" --key="$rauc_key" --mksquashfs-args="-noI -noD -noF -noX" \
	"$work/bundle" "$out/$bundle_name.tmp" >"$work/bundle.log" 2>&1 || die "rauc bundle: $(cat "$work/bundle.log")"
rauc info --keyring="$rauc_keyring" "$out/$bundle_name.tmp" >"$work/info.log" 2>&1 ||
	die "the bundle does not verify with the image's keyring $rauc_keyring: $(cat "$work/info.log")"
mv "$out/$bundle_name.tmp" "$out/$bundle_name"
log "bundle: $(($(stat -c %s "$out/$bundle_name") / 1048576)) MiB in $((SECONDS - bundle_start))s"
if [[ ${BUNDLE_ONLY:-0} == 1 ]]; then
	log "wrote $out/$bundle_name (BUNDLE_ONLY=1: no image)"
	exit 0
fi

# 6. Image assembly.
log "assembling $image_name"
# FAT: ~20 MiB of firmware and U-Boot, the rest for a bundle copied onto the
# card (today's bundle is ~170 MiB). Slots: a release is ~170 MiB today.
# Both sizes are fixed for the life of a card: keep room to grow.
fat_mib=256
slot_mib=384
data_mib=64
fat_start=$((4 * 2048))
slot_a_start=$((fat_start + fat_mib * 2048))
slot_b_start=$((slot_a_start + slot_mib * 2048))
data_start=$((slot_b_start + slot_mib * 2048))
total_sectors=$((data_start + data_mib * 2048))

mkfs.vfat -F 32 -n RASPIFIRM -C "$work/firmware.vfat" $((fat_mib * 1024)) >/dev/null
mcopy -s -p -m -i "$work/firmware.vfat" "$fw"/* ::/
mkfs.ext4 -q -F -L POSSYNC_A -d "$slotdir" "$work/slot.ext4" "${slot_mib}M" >/dev/null
data_uid=$(awk -F: '$1 == "possync" { print $3 }' "$root/etc/passwd")
data_gid=$(awk -F: '$1 == "possync" { print $4 }' "$root/etc/passwd")
[[ -n $data_uid ]] || die "user possync missing in the image"
# /data: the store, RAUC's status, the update bookkeeping (update-contract),
# the box's own state (machine id, ssh host key, journal, systemd's state).
dt=$work/data
install -d -m 0755 "$dt" "$dt/rauc" "$dt/update" "$dt/system" "$dt/system/log" "$dt/system/systemd"
install -d -m 0700 "$dt/system/ssh"
install -d -m 0700 -o "$data_uid" -g "$data_gid" "$dt/possync"
install -d -m 0750 -o "$data_uid" -g "$data_gid" "$dt/update/incoming"
mkfs.ext4 -q -F -L POSSYNCDATA -m 0 -d "$dt" "$work/data.ext4" "${data_mib}M" >/dev/null
for fs in slot data; do
	fsck_out=$(e2fsck -fn "$work/$fs.ext4" 2>&1) || die "e2fsck $fs.ext4: $fsck_out"
done

img=$work/$image_name
truncate -s $((total_sectors * 512)) "$img"
# Slot B stays empty (zeros): RAUC formats it at the first install; until
# then U-Boot cannot load it and stays on A (docs/update.md).
sfdisk --quiet "$img" <<EOF
label: dos
label-id: 0x50535943
unit: sectors
start=$fat_start, size=$((fat_mib * 2048)), type=c, bootable
start=$slot_a_start, size=$((slot_mib * 2048)), type=83
start=$slot_b_start, size=$((slot_mib * 2048)), type=83
start=$data_start, size=$((data_mib * 2048)), type=83
EOF
dd if="$work/firmware.vfat" of="$img" bs=1M seek=$((fat_start / 2048)) conv=notrunc,sparse status=none
dd if="$work/slot.ext4" of="$img" bs=1M seek=$((slot_a_start / 2048)) conv=notrunc,sparse status=none
dd if="$work/data.ext4" of="$img" bs=1M seek=$((data_start / 2048)) conv=notrunc,sparse status=none
raw_bytes=$(stat -c %s "$img")
slot_used_mib=$(du -sm "$slotdir" | cut -f1)
log "raw image: $raw_bytes bytes ($((raw_bytes / 1048576)) MiB: FAT $fat_mib, slots A and B $slot_mib each (A holds $slot_used_mib), data $data_mib MiB)"

# 7. Compression and checksum.
log "xz -T2 -$xz_level"
# Exactly one image in out/, so `boot-test.sh out/possync-*-arm64.img.xz` works.
rm -f "$out"/possync-*-arm64.img.xz "$out"/possync-*-arm64.img.xz.sha256
xz -T2 "-$xz_level" -c "$img" >"$out/$image_name.xz.tmp"
mv "$out/$image_name.xz.tmp" "$out/$image_name.xz"
(cd "$out" && sha256sum "$image_name.xz" >"$image_name.xz.sha256")
xz_bytes=$(stat -c %s "$out/$image_name.xz")
log "wrote $out/$image_name.xz: $xz_bytes bytes ($((xz_bytes / 1048576)) MiB; raw $((raw_bytes / 1048576)) MiB)"
log "sha256 $(cut -d' ' -f1 "$out/$image_name.xz.sha256")"
log "wrote $out/$bundle_name"
