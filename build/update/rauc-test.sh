#!/usr/bin/env bash
# build/update/rauc-test.sh — signed update bundles with RAUC: what is accepted, what is refused.
#
#   build/update/rauc-test.sh
#
# Makes a small release payload the way the A/B design lays a slot out (a tar
# of /boot plus the root file system as a squashfs file, for an ext4 slot; see
# system.conf), bundles it with `rauc bundle` (verity format) signed by the
# development key in dev-keys/, and checks with `rauc info --keyring=` against
# the development CA that:
#   - the signed bundle is accepted, and names the development signer;
#   - a bundle signed by another CA is refused;
#   - an unsigned bundle (a bare squashfs) is refused;
#   - a truncated bundle is refused;
#   - a bundle whose signed manifest was edited is refused.
# A changed payload byte is only caught by dm-verity during an install (see the end).
# Each refusal must come with rauc's reason, which is printed. Runs in a few
# seconds; needs rauc and squashfs-tools (root only to install them).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
keys=$PWD/dev-keys
fail() {
	printf 'rauc-test: FAIL: %s\n' "$*" >&2
	exit 1
}
for tool in rauc mksquashfs openssl; do
	command -v "$tool" >/dev/null || fail "$tool missing (apt-get install rauc squashfs-tools openssl)"
done
work=$(mktemp -d /tmp/possync-rauc.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "rauc-test: $(rauc --version), $(mksquashfs -version | head -n1)"

# The payload: a squashfs root (with 200 kB of random data, so the bundle is
# not trivially small) and a /boot, in the tar an ext4 slot is filled from.
mkdir -p "$work/rootfs/etc" "$work/slot/boot" "$work/bundle"
echo "POSSYNC_VERSION=0.0.0-test" >"$work/rootfs/etc/possync-release"
head -c 200000 /dev/urandom >"$work/rootfs/etc/filler"
mksquashfs "$work/rootfs" "$work/slot/root.squashfs" -comp zstd -noappend -quiet -no-progress
echo "not a kernel" >"$work/slot/boot/vmlinuz"
tar -C "$work/slot" -cf "$work/bundle/root.tar" .
cat >"$work/bundle/manifest.raucm" <<'EOF'
[update]
compatible=possync-arm64
version=0.0.0-test

[bundle]
format=verity

[image.rootfs]
filename=root.tar
EOF

# bundle OUT CERT KEY: a signed bundle of $work/bundle.
bundle() {
	rauc bundle --cert="$2" --key="$3" "$work/bundle" "$1" >"$work/bundle.log" 2>&1 ||
		fail "rauc bundle $1: $(cat "$work/bundle.log")"
}
# accepted FILE / refused FILE WHAT: rauc info with the development keyring.
accepted() {
	local out
	out=$(rauc info --keyring="$keys/development-ca.cert.pem" "$1" 2>&1) ||
		fail "signed bundle refused: $out"
	grep -q "Compatible:[[:space:]]*'possync-arm64'" <<<"$out" || fail "rauc info shows no compatible possync-arm64: $out"
	grep -q "Verified inline signature by '.*DEVELOPMENT bundle signing - never ship'" <<<"$out" ||
		fail "rauc info does not name the development signer: $out"
	echo "rauc-test: accepted: signed with the development key ($(stat -c %s "$1") bytes)"
}
refused() {
	local out
	if out=$(rauc info --keyring="$keys/development-ca.cert.pem" "$1" 2>&1); then
		fail "$2 bundle accepted: $out"
	fi
	# rauc prints its reason as the last message; keep it for the report.
	echo "rauc-test: refused $2: $(grep -v '^rauc-Message' <<<"$out" | tr '\n' ' ' | sed 's/ *$//')"
}

bundle "$work/good.raucb" "$keys/development-signing.cert.pem" "$keys/development-signing.key.pem"
accepted "$work/good.raucb"

# Another CA, with the same subject names, signs the same content.
openssl ecparam -name prime256v1 -genkey -noout -out "$work/other-ca.key" 2>/dev/null
openssl req -x509 -new -key "$work/other-ca.key" -config "$keys/openssl.cnf" -extensions v3_ca \
	-days 30 -out "$work/other-ca.pem" 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out "$work/other.key" 2>/dev/null
openssl req -new -key "$work/other.key" -out "$work/other.csr" \
	-subj "/O=possync DEVELOPMENT ONLY - never ship/CN=possync DEVELOPMENT bundle signing - never ship" 2>/dev/null
openssl x509 -req -in "$work/other.csr" -CA "$work/other-ca.pem" -CAkey "$work/other-ca.key" -days 30 \
	-extfile "$keys/openssl.cnf" -extensions v3_leaf -out "$work/other.pem" 2>/dev/null
bundle "$work/other.raucb" "$work/other.pem" "$work/other.key"
refused "$work/other.raucb" "wrongly signed (another CA)"

# Unsigned: the bundle's squashfs without the signature RAUC appends.
mksquashfs "$work/bundle" "$work/unsigned.raucb" -noappend -quiet -no-progress
refused "$work/unsigned.raucb" "unsigned (bare squashfs)"

# Truncated: the last 4 KiB cut off (a copy that stopped early).
size=$(stat -c %s "$work/good.raucb")
head -c $((size - 4096)) "$work/good.raucb" >"$work/truncated.raucb"
refused "$work/truncated.raucb" "truncated (4 KiB short)"

compat_prefix=compatible=possync-arm64
# Tampered: the signed manifest (inside the signature block at the end of the
# bundle) edited to claim another compatible: possync-arm65.
cp "$work/good.raucb" "$work/tampered.raucb"
off=$(grep -obUa 'compatible=possync-arm64' "$work/good.raucb" | tail -n1 | cut -d: -f1)
[[ -n $off ]] || fail "no signed manifest found in the bundle"
printf '5' | dd of="$work/tampered.raucb" bs=1 seek=$((off + ${#compat_prefix} - 1)) conv=notrunc status=none
cmp -s "$work/good.raucb" "$work/tampered.raucb" && fail "tampering changed nothing"
grep -qa 'compatible=possync-arm65' "$work/tampered.raucb" || fail "tampering did not change the compatible"
refused "$work/tampered.raucb" "tampered (signed manifest edited to compatible=possync-arm65)"

# Not checked by `rauc info`, by design of the verity format: the payload. One
# byte changed in the squashfs is still "Verified" here, because the signature
# covers the manifest, which holds the payload's dm-verity root hash; the
# kernel's dm-verity refuses the changed block while `rauc install` reads it.
# That needs loop and device-mapper (root, a VM): a test for the image.
cp "$work/good.raucb" "$work/payload.raucb"
printf 'X' | dd of="$work/payload.raucb" bs=1 seek=$((size / 2)) conv=notrunc status=none
if rauc info --keyring="$keys/development-ca.cert.pem" "$work/payload.raucb" >/dev/null 2>&1; then
	echo "rauc-test: note: a changed payload byte passes rauc info (verity format: caught by dm-verity at install)"
else
	echo "rauc-test: note: a changed payload byte is refused already by rauc info"
fi

echo "rauc-test: PASS"
