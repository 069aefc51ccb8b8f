#!/bin/sh
# install-deps.sh — install the Debian packages the build, the tests and the demo need (QEMU for
# both architectures, media and archive tools). Idempotent: apt-get runs only if something is
# missing.
set -eu

pkgs="qemu-system-x86 qemu-system-arm qemu-utils openssl dosfstools mtools xorriso cpio ca-certificates make kmod isolinux syslinux-common time squashfs-tools exfatprogs xfsprogs btrfs-progs e2fsprogs"
missing=
for p in $pkgs; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done
if [ -z "$missing" ]; then
	echo "install-deps: all present"
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing:$missing — run as root or: sudo apt-get install$missing" >&2
	exit 1
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086 # word splitting of the package list is intended
apt-get install -y -qq --no-install-recommends $missing >/dev/null
