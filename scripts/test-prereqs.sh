#!/bin/sh
# test-prereqs.sh — what `make test` needs beyond Go: the Debian packages (QEMU, media and archive
# tools) and the Debian kernels for the QEMU boot tests. Installed/fetched (cached) when this
# machine can (root with apt-get); otherwise the tests that need them skip and say so, unless
# RAMBOOT_REQUIRE_QEMU=1 (CI), where the QEMU ones fail instead.
set -eu
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	scripts/install-deps.sh
	for arch in x86_64 aarch64; do
		scripts/fetch-kernel.sh "$arch"
	done
else
	for arch in x86_64 aarch64; do
		[ -f "build/kernel/$arch/release" ] ||
			echo "test-prereqs: no $arch kernel and not root with apt-get: QEMU tests for $arch will skip (run scripts/fetch-kernel.sh $arch as root)"
	done
fi
for q in qemu-system-x86_64 qemu-system-aarch64; do
	command -v "$q" >/dev/null 2>&1 ||
		echo "test-prereqs: $q not installed: its QEMU tests will skip (scripts/install-deps.sh installs it)"
done
