#!/bin/sh
# fetch-kernel.sh ARCH — unpack Debian's current cloud kernel for ARCH (x86_64|aarch64) into
# build/kernel/ARCH/{vmlinuz,release,lib/modules/RELEASE/...}.
#
# The ABI is resolved through the linux-image-cloud-* metapackage every time a fetch is needed
# because old ABIs disappear from the mirror. The result is cached: an existing complete tree is
# reused (FORCE=1 refetches). The tree is built beside the target and renamed into place, so an
# interrupted run never leaves a tree that looks complete.
set -eu

arch=${1:-}
out_root=${KERNEL_DIR:-build/kernel}
case "$arch" in
x86_64) debarch=amd64 ;;
aarch64) debarch=arm64 ;;
*)
	echo "usage: $0 x86_64|aarch64" >&2
	exit 2
	;;
esac
dest="$out_root/$arch"

if [ "${FORCE:-0}" != 1 ] && [ -f "$dest/vmlinuz" ] && [ -s "$dest/release" ] &&
	[ -d "$dest/lib/modules/$(cat "$dest/release")" ]; then
	echo "fetch-kernel: $arch: cached $(cat "$dest/release") in $dest"
	exit 0
fi

for tool in apt-get apt-cache dpkg-deb dpkg; do
	command -v "$tool" >/dev/null 2>&1 || {
		echo "fetch-kernel: $tool not found: a Debian/Ubuntu host with apt is required" >&2
		exit 1
	}
done

meta=linux-image-cloud-$debarch
if [ "$debarch" != "$(dpkg --print-architecture)" ]; then
	meta=$meta:$debarch
	if ! dpkg --print-foreign-architectures | grep -qx "$debarch"; then
		echo "fetch-kernel: adding dpkg architecture $debarch"
		dpkg --add-architecture "$debarch"
		apt-get update -qq
	fi
fi

pkg=$(apt-cache depends "$meta" 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}')
if [ -z "$pkg" ]; then
	# A fresh machine may have no package lists yet.
	apt-get update -qq
	pkg=$(apt-cache depends "$meta" 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}')
fi
if [ -z "$pkg" ]; then
	echo "fetch-kernel: cannot resolve the kernel package behind $meta (apt-cache depends)" >&2
	exit 1
fi
pkg=${pkg%:"$debarch"}
echo "fetch-kernel: $arch: $meta -> $pkg"

mkdir -p "$out_root"
tmp=$(mktemp -d "$out_root/.fetch-$arch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
# apt-get download writes into the working directory; the _apt sandbox user may not write to
# $tmp, which only produces a warning when running as root.
if ! (cd "$tmp" && apt-get download -q "$pkg:$debarch") >"$tmp/apt.log" 2>&1; then
	cat "$tmp/apt.log" >&2
	echo "fetch-kernel: apt-get download $pkg:$debarch failed" >&2
	exit 1
fi
deb=$(ls "$tmp"/*.deb 2>/dev/null | head -n 1)
if [ -z "$deb" ]; then
	echo "fetch-kernel: apt-get download $pkg:$debarch produced no .deb" >&2
	exit 1
fi
dpkg-deb -x "$deb" "$tmp/tree"
rm -f "$deb"

# bookworm ships lib/modules; newer (usrmerged) packages ship usr/lib/modules.
if [ ! -d "$tmp/tree/lib/modules" ] && [ -d "$tmp/tree/usr/lib/modules" ]; then
	mkdir -p "$tmp/tree/lib"
	mv "$tmp/tree/usr/lib/modules" "$tmp/tree/lib/modules"
fi
rel=$(ls "$tmp/tree/lib/modules" | head -n 1)
if [ -z "$rel" ] || [ ! -f "$tmp/tree/boot/vmlinuz-$rel" ]; then
	echo "fetch-kernel: $deb has no boot/vmlinuz-RELEASE with lib/modules/RELEASE" >&2
	exit 1
fi
cp "$tmp/tree/boot/vmlinuz-$rel" "$tmp/tree/vmlinuz"
if [ -f "$tmp/tree/boot/config-$rel" ]; then cp "$tmp/tree/boot/config-$rel" "$tmp/tree/config"; fi
echo "$rel" >"$tmp/tree/release"
echo "$pkg" >"$tmp/tree/package"

rm -rf "$dest.old"
if [ -e "$dest" ]; then mv "$dest" "$dest.old"; fi
mv "$tmp/tree" "$dest"
rm -rf "$dest.old"
echo "fetch-kernel: $arch: $rel in $dest"
