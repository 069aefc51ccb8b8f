#!/bin/bash
# bench-apk.sh — ramboot apk add vs the real apk 2.14 (Alpine minirootfs, chroot), same worlds,
# same repository, fresh tmpfs roots, alternating runs (scripts and triggers included on both
# sides). Prints per-world median wall times, the ratio of the medians ramboot/apk and each
# side's peak RSS. Needs root (chroot, mount) and Go (scripts/benchrun does the timing). The
# machine should be otherwise idle: on a loaded one the numbers are mostly scheduling noise.
#
#   scripts/bench-apk.sh [RUNS]        (default 21 runs per side and world)
# Env: RAMBOOT (binary to measure; default: built from this tree), RAMBOOT_SHARED (default ../shared).
set -euo pipefail
cd "$(dirname "$0")/.."
# 21: on a shared two-CPU VM one side's median still moves by ~5% between invocations with 9.
RUNS=${1:-21}
SHARED=${RAMBOOT_SHARED:-../shared}
SHARED=$(cd "$SHARED" && pwd)
REPO=$SHARED/alpine/v3.19
KEYS=$SHARED/alpine/keys
MRF_TGZ=$SHARED/alpine/minirootfs/alpine-minirootfs-3.19.4-x86_64.tar.gz
WORLD1="alpine-base busybox-mdev-openrc ifupdown-ng ca-certificates-bundle"
WORLD2="$WORLD1 openssh chrony dhcpcd e2fsprogs"

[ "$(id -u)" = 0 ] || { echo "bench-apk: needs root (chroot, tmpfs mounts)" >&2; exit 1; }
[ -f "$MRF_TGZ" ] || { echo "bench-apk: missing $MRF_TGZ" >&2; exit 1; }

WORK=$(mktemp -d /tmp/bench-apk.XXXXXX)
cleanup() {
	umount "$WORK/mrf/repo" 2>/dev/null || true
	umount "$WORK/mrf/bench" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

# Built from this tree unless RAMBOOT names a binary: a stale bin/ramboot would measure old code.
if [ -z "${RAMBOOT:-}" ]; then
	RAMBOOT=$WORK/ramboot
	CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$RAMBOOT" ./cmd/ramboot
fi
RAMBOOT=$(cd "$(dirname "$RAMBOOT")" && pwd)/$(basename "$RAMBOOT")
BENCHRUN=$WORK/benchrun
CGO_ENABLED=0 go build -o "$BENCHRUN" ./scripts/benchrun

mkdir -p "$WORK/mrf"
tar -xzf "$MRF_TGZ" -C "$WORK/mrf"
mkdir -p "$WORK/mrf/repo" "$WORK/mrf/bench"
mount --bind "$REPO" "$WORK/mrf/repo"
mount -t tmpfs -o size=1g tmpfs "$WORK/mrf/bench"

# run SIDE WORLDNAME WORLD -> appends "wall_us maxrss_kb user_s sys_s" to $WORK/SIDE.WORLDNAME
# (scripts/benchrun: fork to reap on the monotonic clock, rusage of the installer itself; the
# real apk is started chrooted directly, without chroot(1) in between).
run() {
	local side=$1 wname=$2 world=$3 out=$WORK/$1.$2
	rm -rf "$WORK/mrf/bench/root"
	sync
	if [ "$side" = apk ]; then
		"$BENCHRUN" -o "$out" -chroot "$WORK/mrf" -- /sbin/apk add -q --root /bench/root \
			--initdb --no-network --repository /repo --keys-dir /etc/apk/keys --arch x86_64 $world
	else
		"$BENCHRUN" -o "$out" -- "$RAMBOOT" apk add -q --root "$WORK/mrf/bench/root" \
			--initdb --no-network --repository "$REPO" --keys-dir "$KEYS" --arch x86_64 $world
	fi
}

median() { sort -g | awk '{a[NR]=$1} END{ if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2 }'; }
# quartiles: "p25-p75" of the numbers on stdin (nearest rank), to show how noisy the run was.
quartiles() { sort -g | awk '{a[NR]=$1} END{ printf "%.1f-%.1f", a[int((NR+3)/4)], a[int((3*NR+3)/4)] }'; }

for w in 1 2; do
	world=WORLD$w
	run apk w$w "${!world}"; : >"$WORK/apk.w$w"      # warm caches, discard
	run ramboot w$w "${!world}"; : >"$WORK/ramboot.w$w"
	for ((i = 0; i < RUNS; i++)); do
		if ((i % 2)); then
			run ramboot w$w "${!world}"; run apk w$w "${!world}"
		else
			run apk w$w "${!world}"; run ramboot w$w "${!world}"
		fi
	done
done

fail=0
for w in 1 2; do
	world=WORLD$w
	ta=$(awk '{print $1 / 1000}' "$WORK/apk.w$w" | median)
	tr=$(awk '{print $1 / 1000}' "$WORK/ramboot.w$w" | median)
	ra=$(awk '{print $2}' "$WORK/apk.w$w" | sort -n | tail -1)
	rr=$(awk '{print $2}' "$WORK/ramboot.w$w" | sort -n | tail -1)
	ratio=$(awk -v a="$ta" -v r="$tr" 'BEGIN{ if (a > 0) printf "%.2f", r/a; else print "inf" }')
	ca=$(awk '{print ($3 + $4) * 1000}' "$WORK/apk.w$w" | median)
	cr=$(awk '{print ($3 + $4) * 1000}' "$WORK/ramboot.w$w" | median)
	echo "world $w (${!world}):"
	qa=$(awk '{print $1 / 1000}' "$WORK/apk.w$w" | quartiles)
	qr=$(awk '{print $1 / 1000}' "$WORK/ramboot.w$w" | quartiles)
	echo "  real apk 2.14: median ${ta} ms wall (quartiles ${qa}), ${ca} ms CPU  peak RSS $((ra / 1024)) MiB"
	echo "  ramboot:       median ${tr} ms wall (quartiles ${qr}), ${cr} ms CPU  peak RSS $((rr / 1024)) MiB"
	echo "  ratio ramboot/apk (median wall time): $ratio   (target <= 0.5; RSS target <= 32 MiB)"
done
