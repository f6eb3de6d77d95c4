#!/usr/bin/env bash
# build/binfmt.sh — make this x86-64 machine run arm64 ELF binaries through
# qemu-user-static (needed by test-arm64.sh and image.sh). Idempotent.
#
# Installs qemu-user-static and binfmt-support when missing (Debian/Ubuntu),
# mounts binfmt_misc when it is not mounted, enables qemu-aarch64 and checks
# that the registration carries the F flag (the interpreter is opened at
# registration time, so it also works inside chroots).
set -euo pipefail

entry=/proc/sys/fs/binfmt_misc/qemu-aarch64

if ! command -v qemu-aarch64-static >/dev/null || ! command -v update-binfmts >/dev/null; then
	if [[ $(id -u) != 0 ]]; then
		echo "binfmt.sh: need root to install qemu-user-static binfmt-support" >&2
		exit 1
	fi
	echo "binfmt.sh: installing qemu-user-static binfmt-support"
	apt-get -o DPkg::Lock::Timeout=600 update -qq
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
		--no-install-recommends qemu-user-static binfmt-support >/dev/null
fi

if [[ ! -e /proc/sys/fs/binfmt_misc/register ]]; then
	echo "binfmt.sh: mounting binfmt_misc"
	mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || {
		echo "binfmt.sh: cannot mount binfmt_misc (a container needs --privileged)" >&2
		exit 1
	}
fi

if [[ ! -e $entry ]] || ! grep -qx enabled "$entry"; then
	echo "binfmt.sh: enabling qemu-aarch64"
	update-binfmts --enable qemu-aarch64
fi

if ! grep -q '^flags: .*F' "$entry"; then
	echo "binfmt.sh: $entry lacks the F flag; arm64 programs would fail inside chroots:" >&2
	cat "$entry" >&2
	exit 1
fi
echo "binfmt: qemu-aarch64 registered ($(sed -n 's/^flags: //p' "$entry"))"
