// Package boot is ramboot's PID 1 logic: the boot as an explicit plan of named phases, each with
// its inputs and results, timed, and marked fatal or best-effort. Every kernel-facing side effect
// goes through Actions, and every path is under Env.Root, so whole boots run in t.TempDir().
package boot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ramboot/ramboot/internal/apkarch"
	"github.com/ramboot/ramboot/internal/coldplug"
)

// Env is everything a boot needs from the outside world.
type Env struct {
	Root    string // the initramfs root: "/" as PID 1, a temp dir in tests
	Actions Actions
	Log     *Logger
	Deps    Deps

	KernelRelease string   // uname -r: selects ROOT/lib/modules/RELEASE
	Arch          string   // apk architecture written to etc/apk/arch ("" = from GOARCH)
	SelfExe       string   // the running agent binary, installed into the new root ("" = skip)
	InitEnv       []string // environment for init
	// SequentialModules loads coldplugged modules one after another (deterministic action logs);
	// the default loads independent driver chains in parallel.
	SequentialModules bool

	// System facts, replaceable in tests.
	Now    func() time.Time
	Sleep  func(time.Duration)
	Getpid func() int
	DevOf  func(path string) (uint64, error) // st_dev of a path (no symlink following)
	IsRAM  func(path string) bool            // path is on ramfs/tmpfs (safe to free)
	HasRTC func() bool                       // a /dev/rtc* exists: hwclock instead of swclock
	// AskShell waits up to d for Enter on the console; true = the user wants the rescue shell.
	AskShell func(d time.Duration) bool
	// CPUTime returns the CPU time used so far by this process and its waited-for children
	// (package scripts), for each phase's cpu_ms in the report. nil = not measured (tests).
	CPUTime func() time.Duration
	// SetNice sets one thread's nice value: background module loads (the vfat preload, loads
	// still running once the media are found) go behind the boot until something waits for
	// them. nil = priorities untouched (tests).
	SetNice func(tid, nice int)
	// KernelLog returns the kernel's log buffer (klogctl READ_ALL), used once at handover to
	// time the start-up before the plan (kernel exec of /init to the first phase). nil = not
	// measured (tests).
	KernelLog func() ([]byte, error)
}

func (e *Env) path(p string) string { return filepath.Join(e.Root, p) }

// rel turns an initramfs path back into the path seen from inside the booted system.
func (e *Env) rel(p string) string {
	r, err := filepath.Rel(e.Root, p)
	if err != nil || strings.HasPrefix(r, "..") {
		return p
	}
	return "/" + filepath.ToSlash(r)
}

func (e *Env) defaults() {
	if e.Root == "" {
		e.Root = "/"
	}
	if e.Log == nil {
		e.Log = NewLogger(nil)
	}
	if e.Now == nil {
		e.Now = time.Now
	}
	if e.Sleep == nil {
		e.Sleep = time.Sleep
	}
	if e.Getpid == nil {
		e.Getpid = os.Getpid
	}
	if e.DevOf == nil {
		e.DevOf = func(p string) (uint64, error) {
			var st unix.Stat_t
			if err := unix.Lstat(p, &st); err != nil {
				return 0, &os.PathError{Op: "lstat", Path: p, Err: err}
			}
			return uint64(st.Dev), nil
		}
	}
	if e.IsRAM == nil {
		e.IsRAM = func(p string) bool {
			var fs unix.Statfs_t
			if unix.Statfs(p, &fs) != nil {
				return false
			}
			return fs.Type == unix.RAMFS_MAGIC || fs.Type == unix.TMPFS_MAGIC
		}
	}
	if e.HasRTC == nil {
		e.HasRTC = func() bool {
			m, _ := filepath.Glob(e.path("dev/rtc*"))
			return len(m) > 0
		}
	}
	if e.AskShell == nil {
		e.AskShell = askConsole
	}
	if e.Arch == "" {
		e.Arch = apkarch.Runtime()
	}
}

// Phase is one named step of the boot.
type Phase struct {
	Name    string
	Fatal   bool   // a failure stops the boot (failure policy); otherwise it is reported and the boot goes on
	Inputs  string // what the phase reads
	Results string // what it produces
	run     func(ctx context.Context, s *state) error
}

// Plan returns the boot phases in order.
func Plan() []Phase {
	return []Phase{
		{"early-mounts", true, "-", "/proc /sys /dev /dev/pts /dev/shm /run, kmsg logging", earlyMounts},
		{"cmdline", false, "/proc/cmdline", "Config", readCmdline},
		{"modules", false, "modules= blacklist= /etc/modules, sysfs modaliases", "drivers loaded (coldplug goes on in the background until configure)", loadModules},
		{"media", true, "block devices, alpine_repo= usbdelay= ramboot.wait=", "media mounted at /media/<dev>: repositories, apkovls", findMedia},
		{"single", false, "single", "rescue shell before the root is built", singleShell},
		{"rootfs", true, "rootflags= root_size=", "tmpfs at /sysroot", mountRoot},
		{"overlay", false, "apkovl= noapkovl, media apkovls, lbu backups", "config restored, overlay file list", restoreOverlay},
		{"world", false, "pkgs= ssh_key= etc/apk/world, repositories, keys", "packages installed (diskless; ramboot.strict makes failures fatal)", installWorld},
		{"configure", false, "console= ssh_key=, overlay marker", "coldplug joined; runlevels, inittab, repositories, arch, ramboot+lbu, modules in RAM", configureRoot},
		{"media-release", false, "ramboot.media=", "unneeded media unmounted", releaseMedia},
		{"handover", true, "init= init_args= console=", "mounts moved, initramfs freed, chroot, exec init", handover},
	}
}

// Describe prints the plan: one line per phase with its kind, inputs and results.
func Describe(w io.Writer) {
	for i, p := range Plan() {
		kind := "best-effort"
		if p.Fatal {
			kind = "fatal"
		}
		fmt.Fprintf(w, "%2d %-13s %-11s in: %s\n   %-13s %-11s out: %s\n", i+1, p.Name, kind, p.Inputs, "", "", p.Results)
	}
}

// state carries results from phase to phase.
type state struct {
	env    *Env
	cfg    Config
	report *Report
	start  time.Time
	markAt time.Duration // plan time at which clockMark went to the kernel log (0 = not written)
	notes  []string      // notes of the running phase

	loader  *coldplug.Loader // nil without a module index
	bg      *background      // module loading beside the boot, joined in configure
	mods    *moduleLog       // every module loaded, for the report
	modCopy chan error       // background copy of the modules into the new root
	fsPre   fsPreload        // the vfat preload's CPU priority
	preload chan preloadDone // background index load for the install (nil = none running)

	media       []Medium
	repos       []string // repository dirs used for the install (absolute)
	newRoot     string
	overlay     string   // apkovl restored ("" = none)
	placed      []string // overlay file list (root-relative)
	defaultSvc  bool     // no overlay or etc/.default_boot_services: add Alpine's default services
	ovlMount    string   // temporary mount for apkovl=dev:path, unmounted after the install
	lastTried   string   // last apkovl restore attempted (fallback looks for its backups)
	keyResolved bool     // apkovl_key= looked up (once, for the first encrypted apkovl)
	keyFile     string   // its path ("" = none found)
	keyMount    string   // device mounted only for the key, unmounted after the overlay phase
}

func (s *state) note(format string, args ...any) {
	s.notes = append(s.notes, fmt.Sprintf(format, args...))
}

// Failure is a fatal phase error, returned by Run.
type Failure struct {
	Phase string
	Err   error
}

func (f *Failure) Error() string { return f.Phase + ": " + f.Err.Error() }
func (f *Failure) Unwrap() error { return f.Err }

// Result is what Run leaves behind for the failure policy.
type Result struct {
	Config  Config
	Report  *Report
	NewRoot string   // "" until the root exists
	Repos   []string // boot repositories found (a rescue shell can be installed from them)
}

// Run executes the plan. It returns only if a fatal phase failed (a *Failure) or, with a fake
// Actions whose Exec returns nil, after the handover.
func Run(ctx context.Context, env *Env) (*Result, error) {
	env.defaults()
	s := &state{env: env, start: env.Now(),
		report: &Report{Version: 1, Kernel: env.KernelRelease}}
	s.cfg = ParseCmdline("")
	res := &Result{Report: s.report}
	for _, p := range Plan() {
		err := s.runPhase(ctx, p)
		res.Config, res.NewRoot, res.Repos = s.cfg, s.newRoot, s.repos
		var strict strictError
		if err != nil && (p.Fatal || errors.As(err, &strict)) {
			s.drain()
			return res, &Failure{Phase: p.Name, Err: err}
		}
	}
	return res, nil
}

func (s *state) runPhase(ctx context.Context, p Phase) (err error) {
	t0 := s.env.Now()
	var cpu0 time.Duration
	if s.env.CPUTime != nil {
		cpu0 = s.env.CPUTime()
	}
	s.notes = nil
	defer func() {
		// PID 1 must never die: a panic in a phase becomes that phase's error.
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
		}
		d := s.env.Now().Sub(t0)
		pr := PhaseReport{Name: p.Name, Fatal: p.Fatal, Status: "ok", StartMS: ms(t0.Sub(s.start)),
			DurationMS: ms(d), Notes: s.notes}
		if s.env.CPUTime != nil {
			pr.CPUMS = ms(s.env.CPUTime() - cpu0)
		}
		switch {
		case err == errSkipped:
			pr.Status, err = "skipped", nil
		case err != nil:
			pr.Status, pr.Error = "failed", err.Error()
			s.report.Errors = append(s.report.Errors, p.Name+": "+err.Error())
			var strict strictError
			if p.Fatal || errors.As(err, &strict) {
				s.env.Log.Errorf(p.Name, "%v", err)
			} else {
				s.env.Log.Errorf(p.Name, "%v (continuing)", err)
			}
		}
		s.report.Phases = append(s.report.Phases, pr)
		s.report.TotalMS = ms(s.env.Now().Sub(s.start))
		if pr.Status != "skipped" {
			why := ""
			if len(s.notes) > 0 {
				why = " (" + strings.Join(s.notes, "; ") + ")"
			}
			s.env.Log.Infof(p.Name, "%s in %.3fs%s", pr.Status, d.Seconds(), why)
		}
	}()
	return p.run(ctx, s)
}

// errSkipped marks a phase that had nothing to do.
var errSkipped = fmt.Errorf("skipped")

// askConsole waits for a line on stdin (the console). A closed or non-interactive stdin
// (EOF at once) counts as no answer.
func askConsole(d time.Duration) bool {
	fds := []unix.PollFd{{Fd: 0, Events: unix.POLLIN}}
	n, err := unix.Poll(fds, int(d.Milliseconds()))
	if err != nil || n == 0 || fds[0].Revents&unix.POLLIN == 0 {
		return false
	}
	buf := make([]byte, 256)
	m, _ := unix.Read(0, buf)
	return m > 0
}

// drain waits for background work (coldplug, module copy) so that nothing still writes or
// loads modules while the failure policy runs.
func (s *state) drain() {
	s.joinPreload()
	if s.modCopy != nil {
		<-s.modCopy
		s.modCopy = nil
	}
	if s.bg != nil {
		s.bg.join()
	}
}
