#!/usr/bin/env bash
# build/install-deps.sh — install the Debian packages listed in build/deps/*.txt
# (or only the lists named as arguments, e.g. `image`; one package per line,
# nothing else, so other scripts can feed them to apt-get) that are not installed
# yet. Needs root and apt.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/deps"
lists=()
if (($# == 0)); then
	lists=(*.txt)
else
	for name in "$@"; do lists+=("$name.txt"); done
fi

mapfile -t wanted < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' "${lists[@]}" | grep -v '^$' | sort -u)
missing=()
for pkg in "${wanted[@]}"; do
	if [[ $(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null) != installed ]]; then
		missing+=("$pkg")
	fi
done
if ((${#missing[@]} == 0)); then
	exit 0
fi
if [[ $(id -u) != 0 ]]; then
	echo "install-deps.sh: missing packages, and not root: ${missing[*]}" >&2
	exit 1
fi
echo "install-deps: apt-get install ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=900 update -qq
apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
