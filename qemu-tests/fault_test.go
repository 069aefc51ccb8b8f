package qemutests

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ramboot/ramboot/qemu-tests/vm"
)

// removalChecks run after the host has unplugged the media: the system must keep working and lbu
// must fail clearly and promptly.
const removalChecks = `
check media-before "$(ls /sys/block | tr '\n' ' ')"
check ready-for-removal 1
if waitfor 120 sh -c '! test -e /sys/block/vda'; then check removed yes; else check removed no; fi
check ls-root "$(ls / | wc -l)"
check apk-count "$(apk info 2>/dev/null | wc -l)"
echo after-removal >/tmp/probe && check tmp-write "$(cat /tmp/probe)"
rc-service crond start >/tmp/crond.out 2>&1
check crond-start-rc $?
check crond "$(rc-service crond status 2>&1 | tr -s ' ')"
check lbu-path "$(command -v lbu)"
t0=$(cut -d' ' -f1 /proc/uptime)
timeout 90 lbu commit >/tmp/lbu.out 2>&1
check lbu-rc $?
t1=$(cut -d' ' -f1 /proc/uptime)
check lbu-seconds "$(awk -v a=$t0 -v b=$t1 'BEGIN { printf "%.1f", b - a }')"
out lbu cat /tmp/lbu.out
`

// TestMediaRemoval is scenario 4: after boot the disk is unplugged through QMP; the system keeps
// working (commands, starting a service) and lbu commit then fails with a clear error instead
// of hanging.
func TestMediaRemoval(t *testing.T) {
	t.Parallel()
	a := artifacts(t, "x86_64")
	dir := t.TempDir()
	ovl := baseOverlay("rbtest", []string{"alpine-base", "busybox-mdev-openrc"}, nil, removalChecks)
	ovl["etc/lbu/lbu.conf"] = ovlEntry{body: "LBU_MEDIA=vda\nBACKUP_LIMIT=3\n"}
	ovlPath := filepath.Join(dir, "rbtest.apkovl.tar.gz")
	ovl.write(t, ovlPath)
	media := buildMedia(t, a, mediaSpec{arch: "x86_64", format: "fat", apkovl: ovlPath}, dir)
	v, _ := startVM(t, a, bootSpec{arch: "x86_64", disks: []vm.Disk{{ID: "media", Path: media, Kind: vm.Virtio}}})
	ctx := ctxFor(t)
	if err := v.ExpectString(ctx, "RAMBOOT-CHECK-BEGIN"); err != nil {
		t.Fatalf("guest check script did not start: %v", err)
	}
	m, err := v.Expect(ctx, regexp.MustCompile(`(?s)(.*?)RAMBOOT-CHECK ready-for-removal=1\n`))
	if err != nil {
		t.Fatalf("guest never got ready for the removal: %v", err)
	}
	before := parseChecks(t, m[1])
	if !fields(before.checks["media-before"])["vda"] {
		t.Fatalf("guest block devices before removal = %q, want vda", before.checks["media-before"])
	}
	start := time.Now()
	if err := v.RemoveDisk(ctx, "media"); err != nil {
		t.Fatal(err)
	}
	t.Logf("media unplugged in %v", time.Since(start).Round(time.Millisecond))
	m, err = v.Expect(ctx, regexp.MustCompile(`(?s)(.*?)RAMBOOT-CHECK-END\n`))
	if err != nil {
		t.Fatalf("guest check script did not finish after the removal: %v", err)
	}
	r := parseChecks(t, m[1])
	logPhases(t, "x86_64 media removal", r.report)
	expectCheck(t, r, "removed", "yes")
	expectCheck(t, r, "tmp-write", "after-removal")
	if n, _ := strconv.Atoi(r.checks["apk-count"]); n < 10 {
		t.Errorf("guest apk info after removal listed %q packages, want the installed set (>= 10)", r.checks["apk-count"])
	}
	expectCheck(t, r, "crond-start-rc", "0")
	if !strings.Contains(r.checks["crond"], "started") {
		t.Errorf("guest crond status after removal = %q, want started", r.checks["crond"])
	}
	lbuOut := strings.Join(r.lines["lbu"], "\n")
	switch rc := r.checks["lbu-rc"]; rc {
	case "0":
		t.Errorf("guest lbu commit without media succeeded, want a failure; output:\n%s", lbuOut)
	case "124", "143", "137", "":
		t.Errorf("guest lbu commit without media hung (killed by timeout, rc %q), want a prompt error; output:\n%s", rc, lbuOut)
	}
	if strings.TrimSpace(lbuOut) == "" {
		t.Errorf("guest lbu commit without media printed nothing, want an error naming the problem")
	}
	t.Logf("guest lbu (%s) commit without media: rc %s after %s s: %s", r.checks["lbu-path"], r.checks["lbu-rc"], r.checks["lbu-seconds"], lbuOut)
	if err := v.Wait(ctx); err != nil {
		t.Errorf("guest did not power off: %v", err)
	}
}

// TestFaultNoMedia is scenario 5a: no boot media at all. The boot must end within a bounded time
// in a named error and apply the failure policy: panic=-1 means reboot at once, which ends QEMU
// (-no-reboot) without a kernel panic.
func TestFaultNoMedia(t *testing.T) {
	t.Parallel()
	a := artifacts(t, "x86_64")
	// Not quiet: no boot report is reachable after a fatal media error, so the per-phase times
	// come from ramboot's console lines instead.
	v, _ := startVM(t, a, bootSpec{arch: "x86_64", noisy: true})
	ctx := ctxFor(t)
	if _, err := v.Expect(ctx, regexp.MustCompile(`ramboot: media: .*no boot repository found.*`)); err != nil {
		t.Fatalf("no named media error: %v", err)
	}
	found := v.Elapsed()
	if err := v.Wait(ctx); err != nil {
		t.Fatalf("the failure policy (panic=-1: reboot) did not end the VM: %v", err)
	}
	if v.Seen("Kernel panic") {
		t.Errorf("PID 1 died (kernel panic) instead of rebooting")
	}
	if !v.Seen("reboot") {
		t.Errorf("console does not say the system reboots (panic=-1)")
	}
	t.Logf("no media: error after %v, VM ended after %v", found.Round(100*time.Millisecond), v.Elapsed().Round(100*time.Millisecond))
	var phases []string
	for _, m := range regexp.MustCompile(`ramboot: ([a-z-]+): (ok|failed|skipped) in ([0-9.]+s)`).FindAllStringSubmatch(v.Transcript(), -1) {
		phases = append(phases, m[1]+" "+m[2]+" "+m[3])
	}
	t.Logf("no media: phases from the console: %s", strings.Join(phases, ", "))
	if len(phases) == 0 || !strings.HasPrefix(phases[len(phases)-1], "media failed") {
		t.Errorf("console phase results = %q, want them to end with media failed", phases)
	}
	if found > 3*time.Minute {
		t.Errorf("media error after %v, want it bounded (ramboot.wait default 5 s)", found)
	}
}

// worldChecks report what got installed.
const worldChecks = `
check installed "$(apk info 2>/dev/null | tr '\n' ' ')"
check world "$(tr '\n' ' ' </etc/apk/world)"
`

// TestFaultCorruptApk is scenario 5b: one .apk of the world is corrupt (the signed index is
// intact). The package is named in an error, the others are installed and the boot goes on.
func TestFaultCorruptApk(t *testing.T) {
	t.Parallel()
	a := artifacts(t, "x86_64")
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	copyDir(t, filepath.Join(repoDir(t, "x86_64"), "x86_64"), filepath.Join(repo, "x86_64"))
	bad := filepath.Join(repo, "x86_64", "chrony-4.5-r0.apk")
	data, err := os.ReadFile(bad)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(data) * 2 / 3; i < len(data)*2/3+64; i++ {
		data[i] ^= 0x5a
	}
	if err := os.WriteFile(bad, data, 0o644); err != nil {
		t.Fatal(err)
	}
	ovlPath := filepath.Join(dir, "rbtest.apkovl.tar.gz")
	baseOverlay("rbtest", []string{"alpine-base", "busybox-mdev-openrc", "openssh", "chrony"}, nil, worldChecks).write(t, ovlPath)
	media := buildMedia(t, a, mediaSpec{arch: "x86_64", format: "fat", repo: repo, apkovl: ovlPath}, dir)
	v, _ := startVM(t, a, bootSpec{arch: "x86_64", disks: []vm.Disk{{ID: "media", Path: media, Kind: vm.Virtio, ReadOnly: true}}})
	r := waitChecks(t, ctxFor(t), v)
	logPhases(t, "x86_64 corrupt apk", r.report)
	if !regexp.MustCompile(`ramboot: world: .*chrony`).MatchString(v.Transcript()) {
		t.Errorf("console has no world error naming chrony")
	}
	installed := fields(r.checks["installed"])
	if installed["chrony"] {
		t.Errorf("guest apk info lists chrony from a corrupt package")
	}
	for _, p := range []string{"alpine-base", "openssh"} {
		if !installed[p] {
			t.Errorf("guest apk info = %q, want %s (only the corrupt package may be missing)", r.checks["installed"], p)
		}
	}
	if r.report != nil && !strings.Contains(strings.Join(r.report.Failed, " "), "chrony") {
		t.Errorf("boot report failed = %q, want chrony named", r.report.Failed)
	}
	expectCheck(t, r, "runlevel", "default")
	if err := v.Wait(ctxFor(t)); err != nil {
		t.Errorf("guest did not power off: %v", err)
	}
}

// TestFaultCorruptOverlay is scenario 5c: the apkovl on the media is corrupt; the boot falls back
// to the newest lbu backup of the same host and says so.
func TestFaultCorruptOverlay(t *testing.T) {
	t.Parallel()
	a := artifacts(t, "x86_64")
	dir := t.TempDir()
	media := buildMedia(t, a, mediaSpec{arch: "x86_64", format: "fat"}, dir)
	good := baseOverlay("rbtest", []string{"alpine-base", "busybox-mdev-openrc"}, nil,
		`check from "$(cat /etc/rbtest-origin)"`+"\n")
	good["etc/rbtest-origin"] = ovlEntry{body: "backup\n"}
	goodPath := filepath.Join(dir, "good.tar.gz")
	good.write(t, goodPath)
	goodData, err := os.ReadFile(goodPath)
	if err != nil {
		t.Fatal(err)
	}
	// The corrupt overlay: a real overlay cut in half (gzip and tar both broken at the end).
	broken := baseOverlay("rbtest", []string{"alpine-base"}, nil, `check from current`+"\n")
	broken["etc/rbtest-origin"] = ovlEntry{body: strings.Repeat("current\n", 4096)}
	brokenPath := filepath.Join(dir, "broken.tar.gz")
	broken.write(t, brokenPath)
	brokenData, err := os.ReadFile(brokenPath)
	if err != nil {
		t.Fatal(err)
	}
	fatWrite(t, media, "rbtest.apkovl.tar.gz", brokenData[:len(brokenData)/2])
	fatWrite(t, media, "rbtest.20260101120000.tar.gz", goodData)
	v, _ := startVM(t, a, bootSpec{arch: "x86_64", disks: []vm.Disk{{ID: "media", Path: media, Kind: vm.Virtio, ReadOnly: true}}})
	r := waitChecks(t, ctxFor(t), v)
	logPhases(t, "x86_64 corrupt overlay", r.report)
	expectCheck(t, r, "from", "backup")
	expectCheck(t, r, "hostname", "rbtest")
	if !regexp.MustCompile(`ramboot: overlay: .*rbtest\.apkovl\.tar\.gz`).MatchString(v.Transcript()) {
		t.Errorf("console has no overlay error naming rbtest.apkovl.tar.gz")
	}
	if rep := r.report; rep != nil {
		if rep.Overlay == nil || rep.Overlay.Source != "backup" || filepath.Base(rep.Overlay.Path) != "rbtest.20260101120000.tar.gz" {
			t.Errorf("boot report overlay = %+v, want source backup, path rbtest.20260101120000.tar.gz", rep.Overlay)
		} else if len(rep.Overlay.Fallback) == 0 {
			t.Errorf("boot report overlay has no fallback reason for the corrupt rbtest.apkovl.tar.gz")
		}
	}
	if err := v.Wait(ctxFor(t)); err != nil {
		t.Errorf("guest did not power off: %v", err)
	}
}

// TestFaultMissingWorldPackage is scenario 5d: the world names a package no repository has; it is
// named in an error and dropped, and the boot goes on with the rest.
func TestFaultMissingWorldPackage(t *testing.T) {
	t.Parallel()
	a := artifacts(t, "x86_64")
	dir := t.TempDir()
	ovlPath := filepath.Join(dir, "rbtest.apkovl.tar.gz")
	baseOverlay("rbtest", []string{"alpine-base", "busybox-mdev-openrc", "no-such-package-rb", "openssh"}, nil, worldChecks).write(t, ovlPath)
	media := buildMedia(t, a, mediaSpec{arch: "x86_64", format: "fat", apkovl: ovlPath}, dir)
	v, _ := startVM(t, a, bootSpec{arch: "x86_64", disks: []vm.Disk{{ID: "media", Path: media, Kind: vm.Virtio, ReadOnly: true}}})
	r := waitChecks(t, ctxFor(t), v)
	logPhases(t, "x86_64 missing world package", r.report)
	if !regexp.MustCompile(`ramboot: world: .*no-such-package-rb`).MatchString(v.Transcript()) {
		t.Errorf("console has no world error naming no-such-package-rb")
	}
	installed := fields(r.checks["installed"])
	for _, p := range []string{"alpine-base", "openssh"} {
		if !installed[p] {
			t.Errorf("guest apk info = %q, want %s", r.checks["installed"], p)
		}
	}
	if r.report != nil && !strings.Contains(strings.Join(r.report.Dropped, " "), "no-such-package-rb") {
		t.Errorf("boot report dropped = %q, want no-such-package-rb", r.report.Dropped)
	}
	expectCheck(t, r, "runlevel", "default")
	if err := v.Wait(ctxFor(t)); err != nil {
		t.Errorf("guest did not power off: %v", err)
	}
}

// copyDir copies the regular files of src into dst.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
