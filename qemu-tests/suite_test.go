package qemutests

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ramboot/ramboot/boot"
	"github.com/ramboot/ramboot/internal/testdata"
	"github.com/ramboot/ramboot/qemu-tests/vm"
)

// maxVMs bounds concurrent guests machine-wide (vm.AcquireSlot): the test machines have two
// cores (notes §3: four VMs at once took twice as long as two).
const maxVMs = 2

// Per-boot limits. Under TCG on a shared two-core machine a full boot with package installation
// took tens of seconds; the hard timeout only has to catch a wedged guest.
const (
	bootTimeout = 5 * time.Minute
	waitTimeout = 4 * time.Minute
)

// suite is the state shared by all scenarios of one `go test` run: where things are, what has
// been built. It is created in TestMain and read-only afterwards except for
// its own synchronised fields.
type suite struct {
	root      string // repository root
	kernelDir string // build/kernel
	outDir    string // build/qemu-tests: console logs and phases.txt
	workDir   string // this run's binaries and initramfs images (private: runs may overlap)

	rambootOnce sync.Once
	ramboot     string
	rambootErr  error

	mu        sync.Mutex
	arts      map[string]*archArtifacts
	phaseFile *os.File
}

type archArtifacts struct {
	once      sync.Once
	err       error
	kernel    vm.Kernel
	init      string
	initramfs string
}

var s *suite

func TestMain(m *testing.M) {
	root, err := testdata.RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "qemu-tests:", err)
		os.Exit(1)
	}
	s = &suite{
		root:      root,
		kernelDir: filepath.Join(root, "build", "kernel"),
		outDir:    filepath.Join(root, "build", "qemu-tests"),
		arts:      map[string]*archArtifacts{},
	}
	if d := os.Getenv("RAMBOOT_KERNEL_DIR"); d != "" {
		s.kernelDir = d
	}
	if s.workDir, err = os.MkdirTemp("", "ramboot-qemu-tests"); err != nil {
		fmt.Fprintln(os.Stderr, "qemu-tests:", err)
		os.Exit(1)
	}
	code := m.Run()
	if s.phaseFile != nil {
		s.phaseFile.Close()
	}
	os.RemoveAll(s.workDir)
	os.Exit(code)
}

// requireVM skips (or, with RAMBOOT_REQUIRE_QEMU=1, fails) when QEMU or the kernel for arch is
// missing, naming the missing prerequisite.
func requireVM(t *testing.T, arch string) vm.Kernel {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		msg := "prerequisite missing: " + fmt.Sprintf(format, args...)
		if os.Getenv("RAMBOOT_REQUIRE_QEMU") == "1" {
			t.Fatal(msg + " (RAMBOOT_REQUIRE_QEMU=1: QEMU tests must run)")
		}
		t.Skip(msg)
	}
	if testing.Short() {
		t.Skip("QEMU boot test skipped in -short mode")
	}
	bin, err := vm.Binary(arch)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath(bin); err != nil {
		missing("%s not installed (scripts/install-deps.sh): %v", bin, err)
	}
	k, err := vm.FindKernel(s.kernelDir, arch)
	if err != nil {
		missing("%v", err)
	}
	testdata.Shared(t)
	return k
}

// goBuild builds a command of this module into out.
func goBuild(goarch, pkg, out string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w -buildid=", "-o", out, pkg)
	cmd.Dir = s.root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if goarch != "" {
		cmd.Env = append(cmd.Env, "GOARCH="+goarch)
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s (GOARCH=%s): %v\n%s", pkg, goarch, err, b)
	}
	return nil
}

// rambootBin builds bin/ramboot for the host once per run.
func rambootBin(t *testing.T) string {
	t.Helper()
	s.rambootOnce.Do(func() {
		s.ramboot = filepath.Join(s.workDir, "bin", "ramboot")
		s.rambootErr = goBuild("", "./cmd/ramboot", s.ramboot)
	})
	if s.rambootErr != nil {
		t.Fatal(s.rambootErr)
	}
	return s.ramboot
}

// runRamboot runs the ramboot CLI and fails the test with its output on error.
func runRamboot(t *testing.T, args ...string) string {
	t.Helper()
	bin := rambootBin(t)
	start := time.Now()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ramboot %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("ramboot %s (%v)", args[0], time.Since(start).Round(time.Millisecond))
	return string(out)
}

// artifacts builds the init and the initramfs for arch once per run.
func artifacts(t *testing.T, arch string) *archArtifacts {
	t.Helper()
	k := requireVM(t, arch)
	s.mu.Lock()
	a := s.arts[arch]
	if a == nil {
		a = &archArtifacts{}
		s.arts[arch] = a
	}
	s.mu.Unlock()
	a.once.Do(func() {
		a.kernel = k
		dir := filepath.Join(s.workDir, arch)
		a.init = filepath.Join(dir, "init")
		goarch := map[string]string{"x86_64": "amd64", "aarch64": "arm64"}[arch]
		if a.err = goBuild(goarch, "./cmd/init", a.init); a.err != nil {
			return
		}
		a.initramfs = filepath.Join(dir, "initramfs")
		bin := rambootBin(t)
		args := []string{"initramfs", "--out", a.initramfs, "--arch", arch, "--init", a.init,
			"--modules-dir", k.ModulesDir, "--keys-dir", testdata.Path(t, "alpine", "keys")}
		start := time.Now()
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			a.err = fmt.Errorf("ramboot %s: %v\n%s", strings.Join(args, " "), err, out)
			return
		}
		fi, err := os.Stat(a.initramfs)
		if err != nil {
			a.err = fmt.Errorf("ramboot initramfs wrote no %s: %w", a.initramfs, err)
			return
		}
		t.Logf("%s initramfs: %d KiB in %v", arch, fi.Size()/1024, time.Since(start).Round(time.Millisecond))
	})
	if a.err != nil {
		t.Fatal(a.err)
	}
	return a
}

// repoDir returns the real Alpine boot repository for arch (the directory holding ARCH/).
func repoDir(t *testing.T, arch string) string {
	if arch == "aarch64" {
		return testdata.Path(t, "alpine", "v3.13")
	}
	return testdata.Path(t, "alpine", "v3.19")
}

// mediaSpec describes boot media to build with `ramboot media`.
type mediaSpec struct {
	arch   string
	format string // fat or iso
	repo   string // "" = the real repository for arch
	apkovl string // "" = none
}

// buildMedia runs `ramboot media` into dir and returns the image path.
func buildMedia(t *testing.T, a *archArtifacts, m mediaSpec, dir string) string {
	t.Helper()
	if m.repo == "" {
		m.repo = repoDir(t, m.arch)
	}
	out := filepath.Join(dir, "media."+m.format)
	args := []string{"media", "--out", out, "--format", m.format, "--kernel", a.kernel.Image,
		"--initramfs", a.initramfs, "--repo", m.repo, "--arch", m.arch}
	if m.apkovl != "" {
		args = append(args, "--apkovl", m.apkovl)
	}
	runRamboot(t, args...)
	if _, err := os.Stat(out); err != nil {
		t.Fatalf("ramboot media wrote no %s: %v", out, err)
	}
	return out
}

// bootSpec is one boot of a test.
type bootSpec struct {
	arch   string
	append string
	disks  []vm.Disk
	name   string // suffix for the console log file
	noisy  bool   // boot without quiet (ramboot prints each phase's result and time)
}

// startVM waits for a VM slot, boots, and arranges for the console tail to be printed if the
// test fails and for the VM to be stopped at the end. release frees the slot early (for a second
// boot in the same test); calling it again is harmless.
func startVM(t *testing.T, a *archArtifacts, b bootSpec) (v *vm.VM, release func()) {
	t.Helper()
	// Waiting for a slot is bounded only by the test deadline: another test binary (or another
	// user's run) may legitimately hold both slots for minutes.
	slotCtx := context.Background()
	if dl, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		slotCtx, cancel = context.WithDeadline(slotCtx, dl.Add(-time.Minute))
		defer cancel()
	}
	slot, err := vm.AcquireSlot(slotCtx, maxVMs)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	logName := strings.ReplaceAll(t.Name(), "/", "_")
	if b.name != "" {
		logName += "-" + b.name
	}
	cmdline := b.append
	if !b.noisy {
		cmdline = strings.TrimSpace("quiet " + cmdline)
	}
	cfg := vm.Config{
		Arch: b.arch, Kernel: a.kernel.Image, Initrd: a.initramfs,
		Append:  cmdline,
		Disks:   b.disks,
		Timeout: bootTimeout,
		LogFile: filepath.Join(s.outDir, "logs", logName+".log"),
	}
	v, err = vm.Start(cfg)
	if err != nil {
		slot()
		t.Fatal(err)
	}
	release = func() {
		once.Do(func() {
			v.Close()
			slot()
		})
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("console of %s (full log: %s):\n%s", logName, cfg.LogFile, v.Tail(60))
		}
		release()
	})
	return v, release
}

// ctxFor returns a context bounded by waitTimeout and the test deadline.
func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	if dl, ok := t.Deadline(); ok {
		var cancel2 context.CancelFunc
		ctx, cancel2 = context.WithDeadline(ctx, dl.Add(-30*time.Second))
		t.Cleanup(cancel2)
	}
	return ctx
}

// guestResult is what a guest check script reported.
type guestResult struct {
	checks map[string]string
	lines  map[string][]string // RAMBOOT-OUT key: multi-line outputs
	report *boot.Report
}

// The markers may follow other console output on the same line: a getty's "HOST login: "
// prompt has no newline, so a check printed right after it shares its line.
var (
	checkRE = regexp.MustCompile(`(?m)RAMBOOT-CHECK ([A-Za-z0-9_.-]+)=(.*)$`)
	outRE   = regexp.MustCompile(`(?m)RAMBOOT-OUT ([A-Za-z0-9_.-]+) (.*)$`)
)

// waitChecks waits for the guest check script to finish (RAMBOOT-CHECK-END) and parses what it
// printed: key=value checks and RAMBOOT-OUT lines (the boot report is "RAMBOOT-OUT bootjson").
func waitChecks(t *testing.T, ctx context.Context, v *vm.VM) *guestResult {
	t.Helper()
	if err := v.ExpectString(ctx, "RAMBOOT-CHECK-BEGIN"); err != nil {
		t.Fatalf("guest check script did not start: %v", err)
	}
	t.Logf("default runlevel reached, guest checks began %v after QEMU started", v.Elapsed().Round(100*time.Millisecond))
	m, err := v.Expect(ctx, regexp.MustCompile(`(?s)(.*?)RAMBOOT-CHECK-END\n`))
	if err != nil {
		t.Fatalf("guest check script did not finish: %v", err)
	}
	return parseChecks(t, m[1])
}

func parseChecks(t *testing.T, text string) *guestResult {
	t.Helper()
	r := &guestResult{checks: map[string]string{}, lines: map[string][]string{}}
	for _, m := range checkRE.FindAllStringSubmatch(text, -1) {
		r.checks[m[1]] = strings.TrimSpace(m[2])
	}
	for _, m := range outRE.FindAllStringSubmatch(text, -1) {
		r.lines[m[1]] = append(r.lines[m[1]], m[2])
	}
	if js, ok := r.lines["bootjson"]; ok {
		r.report = parseReport(t, strings.Join(js, "\n"))
	}
	return r
}

// parseReport decodes the guest's /run/ramboot/boot.json.
func parseReport(t *testing.T, js string) *boot.Report {
	t.Helper()
	var rep boot.Report
	if err := json.Unmarshal([]byte(js), &rep); err != nil {
		t.Errorf("guest /run/ramboot/boot.json does not parse: %v\n%s", err, js)
		return nil
	}
	return &rep
}

// logPhases prints the per-phase times of a boot report in the test log and appends them to
// build/qemu-tests/phases.txt (printed by .ci/run).
func logPhases(t *testing.T, label string, rep *boot.Report) {
	t.Helper()
	if rep == nil {
		t.Errorf("%s: no boot report", label)
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: boot report: /init to exec %.0f ms = start-up %.0f ms + plan %.0f ms\n", label, rep.InitToExecMS, rep.StartupMS, rep.TotalMS)
	for _, p := range rep.Phases {
		fmt.Fprintf(&b, "  %-14s %-8s start %8.1f ms  took %8.1f ms  cpu %7.1f ms", p.Name, p.Status, p.StartMS, p.DurationMS, p.CPUMS)
		if p.Error != "" {
			fmt.Fprintf(&b, "  error: %s", p.Error)
		}
		b.WriteByte('\n')
	}
	t.Log(b.String())
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.phaseFile == nil {
		if err := os.MkdirAll(s.outDir, 0o755); err != nil {
			t.Error(err)
			return
		}
		f, err := os.OpenFile(filepath.Join(s.outDir, "phases.txt"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			t.Error(err)
			return
		}
		s.phaseFile = f
	}
	fmt.Fprint(s.phaseFile, b.String())
}

// phase returns the named phase of a report.
func phase(rep *boot.Report, name string) *boot.PhaseReport {
	if rep == nil {
		return nil
	}
	for i := range rep.Phases {
		if rep.Phases[i].Name == name {
			return &rep.Phases[i]
		}
	}
	return nil
}

// expectCheck compares one guest check with want.
func expectCheck(t *testing.T, r *guestResult, key, want string) {
	t.Helper()
	got, ok := r.checks[key]
	if !ok {
		t.Errorf("guest check %s missing", key)
		return
	}
	if got != want {
		t.Errorf("guest check %s = %q, want %q", key, got, want)
	}
}

// fields splits a space-separated check value into a set.
func fields(s string) map[string]bool {
	m := map[string]bool{}
	for _, f := range strings.Fields(s) {
		m[f] = true
	}
	return m
}
