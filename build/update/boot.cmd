# build/update/boot.cmd — possync's A/B boot script for U-Boot (hush).
# Compiled into boot.scr on the FAT partition (p1):
#   mkimage -A arm64 -T script -C none -n possync-ab -d boot.cmd boot.scr
# U-Boot's distro boot finds it there (devtype, devnum are set by distro boot:
# "virtio 0" under QEMU -M virt, "mmc 0" on a Raspberry Pi).
#
# Slots, in the model of RAUC's U-Boot integration (rauc.readthedocs.io,
# "Integration" -> U-Boot); RAUC's bootloader=uboot backend reads and writes
# these variables with fw_printenv/fw_setenv:
#   BOOT_ORDER    slots to try, in order ("A B" or "B A")
#   BOOT_A_LEFT   boot attempts left for slot A (RAUC sets 3 on mark-good
#   BOOT_B_LEFT   and on install; 0 = the slot is skipped)
# Every boot takes one attempt from the first slot in BOOT_ORDER that has one
# left and saves the counters BEFORE booting it, so a slot that never reaches
# `rauc status mark-good` is skipped after 3 tries and the other slot boots.
# When no slot has attempts left, both get 3 again and the board resets.
#
# The counters live in their own environment file, abstate.env (16 KiB, the
# format `fw_setenv` writes: CRC32 + NUL-separated pairs), on p1. It holds
# only these three variables, so U-Boot's own defaults (bootcmd, addresses)
# are never frozen into a file, and the same file works on every board: the
# Pi's U-Boot would treat a file named uboot.env as its whole environment.
# Linux reaches it with /etc/fw_env.config: "/boot/firmware/abstate.env 0x0 0x4000".
# A missing or corrupt file counts as BOOT_ORDER="A B", 3 attempts each.
#
# Slot X is partition ab_part_X; the slot's own ext4 file system holds the
# kernel, initrd and device trees, so the slot chosen here decides the kernel:
#   /boot/vmlinuz       arm64 Image (uncompressed; symlinks are followed)
#   /boot/initrd.img
#   /boot/dtbs/         device trees, ${fdtfile} below it (Pi); on QEMU virt
#                       the machine's own device tree is used.
# The kernel gets root=PARTUUID=<partition> and rauc.slot=A|B.

setenv ab_part_A 2
setenv ab_part_B 3
setenv ab_env abstate.env
setenv ab_env_size 0x4000
setenv ab_bootdev "${devtype} ${devnum}"
if test -z "${devtype}"; then
	setenv ab_bootdev "mmc 0"
	setenv devtype mmc
	setenv devnum 0
fi

# On the Pi, U-Boot's default addresses leave too little room for a 33 MiB
# uncompressed kernel (booti moves it to the next 2 MiB boundary, over the
# device tree at 38 MiB): put the device tree and initrd above 96 MiB.
# kernel_comp_*: where booti puts a gzip-compressed kernel before unpacking
# it to kernel_addr_r (Debian's arm64 vmlinuz is uncompressed; a gzipped one
# also boots).
if test "${board}" = "rpi"; then
	setenv kernel_addr_r 0x00200000
	setenv fdt_addr_r 0x06000000
	setenv ramdisk_addr_r 0x06100000
	setenv kernel_comp_addr_r 0x0a000000
	setenv ab_console "console=ttyS1,115200 console=tty0"
else
	setenv kernel_comp_addr_r 0x4a000000
	setenv ab_console "console=ttyAMA0"
fi
setenv kernel_comp_size 0x2000000

# 1. Read the slot state (only these three variables) from abstate.env.
setenv BOOT_ORDER
setenv BOOT_A_LEFT
setenv BOOT_B_LEFT
if load ${devtype} ${devnum}:1 ${kernel_addr_r} ${ab_env}; then
	if env import -c ${kernel_addr_r} ${filesize} BOOT_ORDER BOOT_A_LEFT BOOT_B_LEFT; then
		echo "possync-ab: state from ${ab_env}"
	else
		echo "possync-ab: ${ab_env} is damaged (bad CRC): using the defaults"
	fi
else
	echo "possync-ab: no ${ab_env} yet: using the defaults"
fi
test -n "${BOOT_ORDER}" || setenv BOOT_ORDER "A B"
test -n "${BOOT_A_LEFT}" || setenv BOOT_A_LEFT 3
test -n "${BOOT_B_LEFT}" || setenv BOOT_B_LEFT 3
echo "possync-ab: BOOT_ORDER=${BOOT_ORDER} BOOT_A_LEFT=${BOOT_A_LEFT} BOOT_B_LEFT=${BOOT_B_LEFT}"

# 2. Choose the first slot in BOOT_ORDER with attempts left; take one.
setenv ab_slot
setenv ab_part
for ab_try in "${BOOT_ORDER}"; do
	if test -n "${ab_slot}"; then
		echo "possync-ab: slot ${ab_try} not needed"
	elif test "${ab_try}" = "A"; then
		if itest ${BOOT_A_LEFT} -gt 0; then
			setexpr BOOT_A_LEFT ${BOOT_A_LEFT} - 1
			setenv ab_slot A
			setenv ab_part ${ab_part_A}
		else
			echo "possync-ab: slot A has no attempts left, skipped"
		fi
	elif test "${ab_try}" = "B"; then
		if itest ${BOOT_B_LEFT} -gt 0; then
			setexpr BOOT_B_LEFT ${BOOT_B_LEFT} - 1
			setenv ab_slot B
			setenv ab_part ${ab_part_B}
		else
			echo "possync-ab: slot B has no attempts left, skipped"
		fi
	fi
done

# 3. Save the decremented counter before anything of the slot runs.
if test -z "${ab_slot}"; then
	echo "possync-ab: no slot has attempts left: both get 3 again, resetting"
	setenv BOOT_A_LEFT 3
	setenv BOOT_B_LEFT 3
fi
env export -c -s ${ab_env_size} ${kernel_addr_r} BOOT_ORDER BOOT_A_LEFT BOOT_B_LEFT
if save ${devtype} ${devnum}:1 ${kernel_addr_r} ${ab_env} ${ab_env_size}; then
	echo "possync-ab: saved BOOT_ORDER=${BOOT_ORDER} BOOT_A_LEFT=${BOOT_A_LEFT} BOOT_B_LEFT=${BOOT_B_LEFT}"
else
	# Booting anyway keeps a box with a read-only or full FAT running; its
	# slots just stop counting down.
	echo "possync-ab: WARNING: could not write ${ab_env}: this attempt is not counted"
fi
if test -z "${ab_slot}"; then
	reset
fi

# 4. Load the chosen slot's kernel, initrd and device tree, and boot it.
echo "possync-ab: booting slot ${ab_slot} (${devtype} ${devnum}:${ab_part})"
part uuid ${devtype} ${devnum}:${ab_part} ab_partuuid
if load ${devtype} ${devnum}:${ab_part} ${kernel_addr_r} /boot/vmlinuz; then
	if load ${devtype} ${devnum}:${ab_part} ${ramdisk_addr_r} /boot/initrd.img; then
		setenv ab_initrd_size ${filesize}
		setenv ab_fdt ${fdtcontroladdr}
		if test -n "${fdtfile}"; then
			if load ${devtype} ${devnum}:${ab_part} ${fdt_addr_r} /boot/dtbs/${fdtfile}; then
				setenv ab_fdt ${fdt_addr_r}
			fi
		fi
		setenv bootargs "${ab_console} root=PARTUUID=${ab_partuuid} ro rootwait panic=10 rauc.slot=${ab_slot}"
		echo "possync-ab: bootargs ${bootargs}"
		booti ${kernel_addr_r} ${ramdisk_addr_r}:${ab_initrd_size} ${ab_fdt}
	fi
fi
# Only reached when the slot could not be loaded or booted (an empty or
# half-written partition): the attempt is already counted, so resetting
# tries again and falls back to the other slot after the last attempt.
echo "possync-ab: slot ${ab_slot} did not boot: resetting"
reset
