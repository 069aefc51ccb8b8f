package boot

import (
	"fmt"
	"strings"
	"sync"
)

// Actions is every kernel-facing side effect of the boot. The real implementation (NewUnixActions)
// makes system calls; the Recorder logs them so whole boots run in t.TempDir() and are
// golden-tested, like Alpine's $MOCK-prefixed initramfs-init tests.
type Actions interface {
	Mount(source, target, fstype string, flags uintptr, data string) error
	Unmount(target string, flags int) error
	LoadModule(path, params string) error
	Chdir(dir string) error
	Chroot(dir string) error
	// ReopenConsole points stdin, stdout and stderr at the console device before exec.
	ReopenConsole(dev string) error
	// Spawn runs a program with the console as stdio and waits for it (rescue shell); a
	// non-empty chroot runs it inside that directory (a shell from the new root).
	Spawn(chroot, path string, argv, env []string) error
	Exec(path string, argv, env []string) error // replaces the process; returns only on failure
	Reboot(cmd int) error
	Sync()
}

// Linux reboot commands (values of LINUX_REBOOT_CMD_*), kept here so the package builds anywhere.
const (
	RebootRestart  = 0x01234567
	RebootPowerOff = 0x4321FEDC
	RebootHalt     = 0xCDEF0123
)

// Recorder is a fake Actions that logs each call as one text line. Paths under Strip are shown
// relative to it ("/" + rest) so logs from t.TempDir() are stable. Fail makes calls whose line
// starts with a given prefix return that error (to test failure handling).
type Recorder struct {
	Strip string
	Fail  map[string]error

	mu    sync.Mutex
	lines []string
}

// NewRecorder returns an empty recording fake.
func NewRecorder() *Recorder { return &Recorder{Fail: map[string]error{}} }

// Lines returns the log so far.
func (r *Recorder) Lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.lines...)
}

// String returns the log, one call per line.
func (r *Recorder) String() string {
	l := r.Lines()
	if len(l) == 0 {
		return ""
	}
	return strings.Join(l, "\n") + "\n"
}

func (r *Recorder) rel(p string) string {
	if r.Strip == "" || !strings.HasPrefix(p, r.Strip) {
		return p
	}
	rest := strings.TrimPrefix(p, r.Strip)
	if rest == "" {
		return "/"
	}
	if !strings.HasPrefix(rest, "/") {
		return p
	}
	return rest
}

func (r *Recorder) log(format string, args ...any) error {
	line := fmt.Sprintf(format, args...)
	r.mu.Lock()
	r.lines = append(r.lines, line)
	r.mu.Unlock()
	for prefix, err := range r.Fail {
		if strings.HasPrefix(line, prefix) {
			return err
		}
	}
	return nil
}

func (r *Recorder) relAll(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		out[i] = r.rel(a)
	}
	return strings.Join(out, " ")
}

// Record adds a line of its own (e.g. a test's fake sleep) to the log.
func (r *Recorder) Record(line string) { _ = r.log("%s", line) }

// Mount records "mount -t FSTYPE -o FLAGS,DATA SOURCE TARGET".
func (r *Recorder) Mount(source, target, fstype string, flags uintptr, data string) error {
	opts := FlagString(flags)
	if data != "" {
		opts = strings.TrimPrefix(opts+","+data, ",")
	}
	var b strings.Builder
	b.WriteString("mount")
	if fstype != "" {
		b.WriteString(" -t " + fstype)
	}
	if opts != "" {
		b.WriteString(" -o " + opts)
	}
	return r.log("%s %s %s", b.String(), r.rel(source), r.rel(target))
}

// Unmount records "umount [-l] TARGET".
func (r *Recorder) Unmount(target string, flags int) error {
	if flags&mntDetach != 0 {
		return r.log("umount -l %s", r.rel(target))
	}
	return r.log("umount %s", r.rel(target))
}

// LoadModule records "insmod PATH [PARAMS]".
func (r *Recorder) LoadModule(path, params string) error {
	return r.log("%s", strings.TrimSpace("insmod "+r.rel(path)+" "+params))
}

// Chdir records "chdir DIR".
func (r *Recorder) Chdir(dir string) error { return r.log("chdir %s", r.rel(dir)) }

// Chroot records "chroot DIR".
func (r *Recorder) Chroot(dir string) error { return r.log("chroot %s", r.rel(dir)) }

// ReopenConsole records "console DEV".
func (r *Recorder) ReopenConsole(dev string) error { return r.log("console %s", r.rel(dev)) }

// Spawn records "spawn [chroot DIR] PATH ARGV...".
func (r *Recorder) Spawn(chroot, path string, argv, env []string) error {
	if chroot != "" {
		return r.log("spawn chroot %s %s", r.rel(chroot), r.relAll(append([]string{path}, argv[1:]...)))
	}
	return r.log("spawn %s", r.relAll(append([]string{path}, argv[1:]...)))
}

// Exec records "exec PATH ARGV..."; a recorded exec "succeeds" by returning nil.
func (r *Recorder) Exec(path string, argv, env []string) error {
	return r.log("exec %s", r.relAll(append([]string{path}, argv[1:]...)))
}

// Reboot records "reboot CMD".
func (r *Recorder) Reboot(cmd int) error {
	name := map[int]string{RebootRestart: "restart", RebootPowerOff: "poweroff", RebootHalt: "halt"}[cmd]
	return r.log("reboot %s", name)
}

// Sync records "sync".
func (r *Recorder) Sync() { _ = r.log("sync") }

// Mount flags (Linux values; identical on every architecture ramboot targets).
const (
	MSRdonly      = 0x1
	MSNosuid      = 0x2
	MSNodev       = 0x4
	MSNoexec      = 0x8
	MSRemount     = 0x20
	MSBind        = 0x1000
	MSMove        = 0x2000
	MSRec         = 0x4000
	MSStrictatime = 0x1000000
	mntDetach     = 0x2
)

// FlagString renders mount flags the way mount(8) spells them.
func FlagString(flags uintptr) string {
	names := []struct {
		f    uintptr
		name string
	}{
		{MSRemount, "remount"}, {MSMove, "move"}, {MSBind, "bind"}, {MSRec, "rec"},
		{MSRdonly, "ro"}, {MSNosuid, "nosuid"}, {MSNodev, "nodev"}, {MSNoexec, "noexec"},
		{MSStrictatime, "strictatime"},
	}
	var out []string
	for _, n := range names {
		if flags&n.f != 0 {
			out = append(out, n.name)
			flags &^= n.f
		}
	}
	if flags != 0 {
		out = append(out, fmt.Sprintf("%#x", flags))
	}
	return strings.Join(out, ",")
}
