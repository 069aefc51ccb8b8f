#!/bin/bash
# bench-boot.sh — the issue's boot-time set-up N times in a row (TestBootFATOverlay: Debian cloud
# kernel, QEMU TCG -smp 2, FAT media with the 3.19.1 repository and an overlay, 47 packages) and
# the medians of /init to exec of /sbin/init and of each phase (wall and CPU), from the guests'
# boot reports. Run it on an otherwise idle machine; the host's speed drifts (±20% between
# minutes here), so compare changes with interleaved runs, not against old figures.
#
#   scripts/bench-boot.sh [N]          (default 5)
# Env: RAMBOOT_QEMU_APPEND (extra kernel parameters, e.g. to A/B a GODEBUG setting).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-5}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for ((i = 1; i <= N; i++)); do
	rm -f build/qemu-tests/phases.txt
	if ! go test -count=1 -run 'TestBootFATOverlay$' ./qemu-tests/ >/dev/null; then
		echo "bench-boot: run $i failed (go test -count=1 -v -run TestBootFATOverlay ./qemu-tests/ shows why)" >&2
		exit 1
	fi
	if ! grep -q 'fat + overlay: boot report' build/qemu-tests/phases.txt 2>/dev/null; then
		echo "bench-boot: no boot report from run $i (skipped? the kernel: make kernel; QEMU: scripts/install-deps.sh)" >&2
		exit 1
	fi
	# "x86_64 fat + overlay: boot report: /init to exec 1665 ms = start-up 111 ms + plan 1554 ms"
	# then "  PHASE  STATUS  start S ms  took D ms  cpu C ms" lines.
	awk '/fat \+ overlay: boot report/ {print "total", $10; print "start-up", $14; next}
	     /^  [a-z-]+ +(ok|skipped|failed) / {print $1, $7, $10}' build/qemu-tests/phases.txt >>"$out"
	printf 'run %d: /init to exec %s ms\n' "$i" "$(awk '$1 == "total" {v = $2} END {print v}' "$out")"
done
median() { sort -g | awk '{a[NR]=$1} END{ if (NR%2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2 }'; }
echo "medians of $N boots (ms):"
printf '  %-14s %8s\n' "/init→exec" "$(awk '$1 == "total" {print $2}' "$out" | median)"
printf '  %-14s %8s\n' "start-up" "$(awk '$1 == "start-up" {print $2}' "$out" | median)"
for p in early-mounts cmdline modules media rootfs overlay world configure; do
	printf '  %-14s %8s   cpu %8s\n' "$p" "$(awk -v p="$p" '$1 == p {print $2}' "$out" | median)" "$(awk -v p="$p" '$1 == p {print $3}' "$out" | median)"
done
echo "target (issue #5): /init→exec <= 1600 ms; Alpine's initramfs on this set-up: 6200 ms"
