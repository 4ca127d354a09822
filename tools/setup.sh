#!/bin/bash
# Installs what wsfs needs on Debian 12 and builds it.
#   scripts/setup.sh            release-ish build in build/
#   scripts/setup.sh --asan     also an ASan+UBSan build in build-asan/
# Safe to run again: apt and meson skip what is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(meson ninja-build pkg-config gcc libc6-dev make tar attr util-linux
      fuse3 libfuse3-dev libsqlite3-dev sqlite3 python3 python3-pytest
      libssl-dev libxxhash-dev libzstd-dev libjansson-dev e2fsprogs xxhash
      zstd libyaml-dev systemd groff-base)

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "setup: installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" >/dev/null
fi

build() {
	local dir=$1; shift
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" "$@" >/dev/null
	fi
	ninja -C "$dir" >/dev/null
	echo "setup: built $dir"
}

build build
if [ "${1:-}" = "--asan" ]; then
	build build-asan -Db_sanitize=address,undefined -Db_lundef=false
fi
