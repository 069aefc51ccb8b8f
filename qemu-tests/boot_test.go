package qemutests

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ramboot/ramboot/boot"
	"github.com/ramboot/ramboot/qemu-tests/vm"
)

// defaultRunlevels are the services initramfs-init (and ramboot) add when there is no apkovl or
// it carries etc/.default_boot_services (notes: alpine-initramfs §2.6 step 37), plus the clock.
// modloop is left out: ramboot adds it only when the media carries a modloop image (these
// media do not; the modules are in RAM). firstboot removes itself from the default runlevel when
// it runs, so it is checked on the console instead.
var defaultRunlevels = map[string][]string{
	"sysinit":  {"devfs", "dmesg", "mdev", "hwdrivers"},
	"boot":     {"modules", "sysctl", "hostname", "bootmisc", "syslog"},
	"shutdown": {"mount-ro", "killprocs", "savecache"},
}

// shell is a root login on the guest's serial console.
type shell struct {
	t *testing.T
	v *vm.VM
	n int
}

// login waits for the getty's login prompt and logs in as root (Alpine's root has no password).
func login(t *testing.T, v *vm.VM) *shell {
	t.Helper()
	ctx := ctxFor(t)
	if err := v.ExpectPrompt(ctx, "login: "); err != nil {
		t.Fatalf("no login prompt: %v", err)
	}
	t.Logf("login prompt after %v", v.Elapsed().Round(100*time.Millisecond))
	if err := v.Write("root\n"); err != nil {
		t.Fatal(err)
	}
	// login discards typeahead, so wait for the root shell's prompt before typing.
	if err := v.ExpectPrompt(ctx, "# "); err != nil {
		t.Fatalf("no root shell prompt after login: %v", err)
	}
	sh := &shell{t: t, v: v}
	if out, st := sh.run("echo ok"); st != 0 || strings.TrimSpace(out) != "ok" {
		t.Fatalf("guest shell: echo ok = %q (exit %d), want ok", out, st)
	}
	return sh
}

// run executes cmd in the guest shell and returns its output and exit status. The markers are
// built with printf so that the echoed command line never matches them.
func (sh *shell) run(cmd string) (string, int) {
	sh.t.Helper()
	sh.n++
	line := fmt.Sprintf("printf 'RB%%s-%d\\n' BEGIN; %s; printf 'RB%%s-%d-%%s\\n' END $?\n", sh.n, cmd, sh.n)
	if err := sh.v.Write(line); err != nil {
		sh.t.Fatal(err)
	}
	re := regexp.MustCompile(fmt.Sprintf(`(?s)RBBEGIN-%d\n(.*?)RBEND-%d-(\d+)\n`, sh.n, sh.n))
	ctx, cancel := context.WithTimeout(ctxFor(sh.t), 2*time.Minute)
	defer cancel()
	m, err := sh.v.Expect(ctx, re)
	if err != nil {
		sh.t.Fatalf("guest command %q: %v", cmd, err)
	}
	var status int
	fmt.Sscan(m[2], &status)
	return m[1], status
}

// checkDefaultBoot logs in and checks what a boot without an apkovl must produce: OpenRC in the
// default runlevel with the default services, a tmpfs root, and a boot report naming every phase.
func checkDefaultBoot(t *testing.T, v *vm.VM, label string) {
	sh := login(t, v)
	if out, _ := sh.run("rc-status -r"); strings.TrimSpace(out) != "default" {
		t.Errorf("rc-status -r = %q, want default", out)
	}
	for lvl, want := range defaultRunlevels {
		out, _ := sh.run("ls /etc/runlevels/" + lvl)
		got := fields(out)
		for _, svc := range want {
			if !got[svc] {
				t.Errorf("runlevel %s = %q, want it to contain %s", lvl, strings.Join(strings.Fields(out), " "), svc)
			}
		}
	}
	if !regexp.MustCompile(`(?m)^ \* Starting firstboot \.\.\. \[ ok \]$`).MatchString(v.Transcript()) {
		t.Errorf("console has no \" * Starting firstboot ... [ ok ]\": the default runlevel did not run")
	}
	if out, _ := sh.run("awk '$2 == \"/\" { t = $3 } END { print t }' /proc/mounts"); strings.TrimSpace(out) != "tmpfs" {
		t.Errorf("root filesystem type = %q, want tmpfs", strings.TrimSpace(out))
	}
	if out, st := sh.run("apk info -e alpine-base"); st != 0 || strings.TrimSpace(out) != "alpine-base" {
		t.Errorf("apk info -e alpine-base = %q (exit %d), want alpine-base", strings.TrimSpace(out), st)
	}
	checkNoServiceErrors(t, v)
	out, st := sh.run("cat /run/ramboot/boot.json")
	if st != 0 {
		t.Fatalf("cat /run/ramboot/boot.json: exit %d: %s", st, out)
	}
	rep := parseReport(t, out)
	logPhases(t, label, rep)
	checkAllPhases(t, rep)
	sh.v.Write("poweroff\n")
	if err := v.Wait(ctxFor(t)); err != nil {
		t.Errorf("guest did not power off: %v", err)
	}
}

// checkNoServiceErrors fails for every OpenRC service error on the console: a default boot must
// start every service it enables. One is documented as expected (boot/README.md "Boot media
// after boot"): Alpine's default sysinit list keeps modloop, and these media carry no modloop
// image, so OpenRC's modloop service fails harmlessly; it is logged, not failed.
func checkNoServiceErrors(t *testing.T, v *vm.VM) {
	t.Helper()
	for _, l := range regexp.MustCompile(`(?m)^ \* ERROR: .*$`).FindAllString(v.Transcript(), -1) {
		if strings.TrimSpace(l) == "* ERROR: modloop failed to start" {
			t.Logf("expected without a modloop image on the media: %q", l)
			continue
		}
		t.Errorf("OpenRC service error on the console: %q", l)
	}
}

// checkAllPhases checks that the report names every phase of the boot plan, in order, and that
// none failed.
func checkAllPhases(t *testing.T, rep *boot.Report) {
	t.Helper()
	if rep == nil {
		t.Error("no boot report")
		return
	}
	var want, got []string
	for _, p := range boot.Plan() {
		want = append(want, p.Name)
	}
	for _, p := range rep.Phases {
		got = append(got, p.Name)
		if p.Status == "failed" {
			t.Errorf("boot report: phase %s failed: %s", p.Name, p.Error)
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("boot report phases = %q, want %q", got, want)
	}
	if len(rep.Errors) > 0 {
		t.Errorf("boot report errors = %q, want none", rep.Errors)
	}
	// The start-up before the first phase comes from the kernel log's timestamps; a real
	// boot always has them (Debian kernels log with printk.time).
	if rep.StartupMS <= 0 || rep.InitToExecMS < rep.TotalMS {
		t.Errorf("boot report startup_ms = %.1f, init_to_exec_ms = %.1f (total_ms %.1f), want the start-up measured", rep.StartupMS, rep.InitToExecMS, rep.TotalMS)
	}
}

// TestBootISONoOverlay is scenario 1: x86_64 ISO media (IDE CD), no apkovl: the default
// runlevels, OpenRC in the default runlevel, the login prompt, and a complete boot report.
func TestBootISONoOverlay(t *testing.T) {
	t.Parallel()
	a := artifacts(t, "x86_64")
	media := buildMedia(t, a, mediaSpec{arch: "x86_64", format: "iso"}, t.TempDir())
	v, _ := startVM(t, a, bootSpec{arch: "x86_64", disks: []vm.Disk{{ID: "cd", Path: media, Kind: vm.CDROM}}})
	checkDefaultBoot(t, v, "x86_64 iso, no overlay")
}

// TestBootAarch64 is scenario 6: aarch64 virt (cortex-a57) with the Debian arm64 kernel and the
// Alpine 3.13 repository (older layout: busybox-initscripts, no busybox-mdev-openrc) boots to
// OpenRC's default runlevel and the login prompt, from FAT on virtio-blk and from an ISO on a
// virtio-scsi CD (-cdrom attaches nothing on virt).
func TestBootAarch64(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		format string
		kind   vm.DiskKind
	}{{"fat", vm.Virtio}, {"iso", vm.CDROM}} {
		t.Run(tc.format, func(t *testing.T) {
			t.Parallel()
			a := artifacts(t, "aarch64")
			media := buildMedia(t, a, mediaSpec{arch: "aarch64", format: tc.format}, t.TempDir())
			v, _ := startVM(t, a, bootSpec{arch: "aarch64", disks: []vm.Disk{{ID: "media", Path: media, Kind: tc.kind, ReadOnly: true}}})
			checkDefaultBoot(t, v, "aarch64 "+tc.format+", 3.13, no overlay")
		})
	}
}

// servicesChecks are guest checks for the FAT + overlay scenario.
const servicesChecks = `
check world "$(tr '\n' ' ' </etc/apk/world)"
check installed "$(apk info 2>/dev/null | tr '\n' ' ')"
out audit apk audit --system
check audit-bin-usr-lib "$(apk audit --system 2>&1 | grep -cE '^. (bin|sbin|usr|lib)/')"
waitfor 60 rc-service sshd status
check sshd "$(rc-service sshd status 2>&1 | tr -s ' ')"
check sshd-pid "$(pidof sshd >/dev/null && echo running || echo none)"
waitfor 60 rc-service chronyd status
check chronyd "$(rc-service chronyd status 2>&1 | tr -s ' ')"
check default-runlevel "$(ls /etc/runlevels/default | tr '\n' ' ')"
`

// TestBootFATOverlay is scenario 2: x86_64 FAT media with an apkovl setting the hostname, a world
// of openssh and chrony on top of the base, and services; everything must be applied, the real
// apk must list the world and find nothing changed under /bin /sbin /usr /lib, sshd must run,
// and the root must be a tmpfs.
func TestBootFATOverlay(t *testing.T) {
	t.Parallel()
	a := artifacts(t, "x86_64")
	dir := t.TempDir()
	ovl := filepath.Join(dir, "rbtest.apkovl.tar.gz")
	baseOverlay("rbtest", []string{"alpine-base", "busybox-mdev-openrc", "openssh", "chrony"},
		[]string{"sshd", "chronyd"}, servicesChecks).write(t, ovl)
	media := buildMedia(t, a, mediaSpec{arch: "x86_64", format: "fat", apkovl: ovl}, dir)
	v, _ := startVM(t, a, bootSpec{arch: "x86_64", disks: []vm.Disk{{ID: "media", Path: media, Kind: vm.Virtio, ReadOnly: true}}})
	r := waitChecks(t, ctxFor(t), v)
	logPhases(t, "x86_64 fat + overlay", r.report)
	checkAllPhases(t, r.report)
	expectCheck(t, r, "runlevel", "default")
	expectCheck(t, r, "hostname", "rbtest")
	expectCheck(t, r, "root-fstype", "tmpfs")
	world := fields(r.checks["world"])
	installed := fields(r.checks["installed"])
	for _, p := range []string{"alpine-base", "openssh", "chrony"} {
		if !world[p] {
			t.Errorf("guest /etc/apk/world = %q, want it to contain %s", r.checks["world"], p)
		}
		if !installed[p] {
			t.Errorf("guest apk info = %q, want it to list %s", r.checks["installed"], p)
		}
	}
	checkNoServiceErrors(t, v)
	expectCheck(t, r, "audit-bin-usr-lib", "0")
	if l := r.lines["audit"]; len(l) > 0 {
		t.Logf("guest apk audit --system:\n%s", strings.Join(l, "\n"))
	}
	if !strings.Contains(r.checks["sshd"], "started") || r.checks["sshd-pid"] != "running" {
		t.Errorf("guest sshd: status %q, process %q; want started and running", r.checks["sshd"], r.checks["sshd-pid"])
	}
	if !strings.Contains(r.checks["chronyd"], "started") {
		t.Errorf("guest chronyd status = %q, want started", r.checks["chronyd"])
	}
	for _, svc := range []string{"sshd", "chronyd", "local"} {
		if !fields(r.checks["default-runlevel"])[svc] {
			t.Errorf("guest default runlevel = %q, want it to contain %s", r.checks["default-runlevel"], svc)
		}
	}
	if err := v.Wait(ctxFor(t)); err != nil {
		t.Errorf("guest did not power off: %v", err)
	}
}
