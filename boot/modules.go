package boot

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/ramboot/ramboot/internal/coldplug"
)

// loadModules loads modules= and the initramfs /etc/modules, then coldplugs the devices present
// (internal/coldplug repeats the sysfs walk while loaded drivers add devices, e.g. virtio_pci →
// virtio_blk). Hot-plugged devices are handled during the media wait.
func loadModules(ctx context.Context, s *state) error {
	e := s.env
	if e.KernelRelease == "" || e.Deps.LoadIndex == nil {
		s.note("no module index (kernel release or loader unknown)")
		return errSkipped
	}
	dir := e.path("lib/modules/" + e.KernelRelease)
	ix, err := e.Deps.LoadIndex(dir)
	if err != nil {
		return fmt.Errorf("module index %s: %w", dir, err)
	}
	s.mods = &moduleLog{actions: e.Actions, setNice: e.SetNice}
	s.loader = coldplug.New(coldplug.Options{
		Index: ix, SysRoot: e.Root, Loader: s.mods, Blacklist: s.cfg.Blacklist, Params: s.cfg.ModParams,
		Sequential: e.SequentialModules,
		Log:        func(format string, args ...any) { e.Log.Debugf("modules", format, args...) },
	})
	explicit := append([]string(nil), s.cfg.Modules...)
	explicit = append(explicit, readList(e.path("etc/modules"))...)
	var errs []error
	s.addModules(s.loader.LoadNamed(explicit...), &errs)
	// Loads beside the boot (the media search's rescans, and below the coldplug and the vfat
	// preload) are joined in configure, before the modules are copied and the initramfs freed.
	s.bg = &background{}
	if e.SequentialModules {
		s.addModules(s.loader.Coldplug(), &errs)
		s.note("%d modules", len(s.report.Modules))
		return errors.Join(errs...)
	}
	// Coldplug runs on while the media are searched: the boot disk's driver chain shows up as
	// uevents the media search waits for, and slow unrelated drivers (ata_piix probes for 250 ms
	// under TCG) no longer delay it.
	// The most common boot media filesystem's modules (vfat with its codepages) load in parallel
	// with the disk drivers, so they are in when a USB stick or disk image is probed; others
	// (isofs for a CD, whose drivers take longer anyway) load on demand. A mount that needs vfat
	// before the preload is done waits for it inside coldplug (LoadFS awaits loads in flight).
	s.bg.start(func() coldplug.Report {
		// At low CPU priority: nothing needs these until a disk appears, and loading a
		// module (signature check, relocation) is CPU work that would otherwise slow the
		// disk's own driver chain (about 35 ms of the media phase under TCG). A mount that
		// needs them raises the priority again (prepareFS), or a busy machine could starve
		// the very load the boot is waiting for.
		s.fsPre.lower(e.SetNice)
		if err := s.loader.LoadFS("vfat"); err != nil {
			return coldplug.Report{Errors: []string{"vfat preload: " + err.Error()}}
		}
		return coldplug.Report{}
	})
	s.bg.start(s.loader.Coldplug)
	s.note("%d modules; coldplug continues in the background", len(s.report.Modules))
	return errors.Join(errs...)
}

// background tracks module loading that runs beside the boot: the coldplug walk, the vfat
// preload and the media search's rescans. join closes it: work offered afterwards (a rescan the
// media search started just before it returned) is not run, so no module loads after the
// initramfs is freed.
type background struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
	reps   []coldplug.Report
}

// enter registers one piece of work; false once joined.
func (b *background) enter() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	b.wg.Add(1) // under mu and before closed: never concurrent with join's Wait
	return true
}

// run calls f and keeps its report; a panic in f costs only that work.
func (b *background) run(f func() coldplug.Report) {
	var rep coldplug.Report
	defer func() {
		if r := recover(); r != nil {
			rep = coldplug.Report{Errors: []string{fmt.Sprintf("module loading panic: %v", r)}}
		}
		b.mu.Lock()
		b.reps = append(b.reps, rep)
		b.mu.Unlock()
		b.wg.Done()
	}()
	rep = f()
}

// start runs f in a goroutine.
func (b *background) start(f func() coldplug.Report) {
	if b.enter() {
		go b.run(f)
	}
}

// do runs f in the calling goroutine (the caller wants to know when it is done).
func (b *background) do(f func() coldplug.Report) {
	if b.enter() {
		b.run(f)
	}
}

// join waits for all work and returns the reports in completion order; later work is refused.
func (b *background) join() []coldplug.Report {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.wg.Wait()
	b.mu.Lock()
	defer b.mu.Unlock()
	reps := b.reps
	b.reps = nil
	return reps
}

// joinColdplug waits for the background module loading and records its outcome.
func (s *state) joinColdplug() error {
	if s.bg == nil {
		return nil
	}
	t0 := s.env.Now()
	s.mods.background(false) // waited for now
	reps := s.bg.join()
	var errs []error
	for _, rep := range reps {
		s.addModules(rep, &errs)
	}
	if !s.env.SequentialModules {
		s.note("coldplug joined after %.3fs (%d modules in all)", s.env.Now().Sub(t0).Seconds(), len(s.report.Modules))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("modules: %w", err)
	}
	return nil
}

// addModules records a coldplug report. A module that failed to load is this phase's error; a
// module that does not exist (modules=usb-storage on a kernel without it) is only a warning, as
// Alpine's modprobe 2>/dev/null.
func (s *state) addModules(rep coldplug.Report, errs *[]error) {
	for _, l := range rep.Loaded {
		if l.Err != "" {
			*errs = append(*errs, errors.New(l.Err))
		}
	}
	s.report.Modules = s.mods.names()
	for _, b := range rep.Blacklisted {
		s.note("blacklisted %s", b)
	}
	for _, msg := range rep.Errors {
		s.report.Warnings = append(s.report.Warnings, "modules: "+msg)
		s.env.Log.Warnf("modules", "%s", msg)
	}
}

// readList reads a file of names, one per line, skipping blanks and # comments.
func readList(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		out = append(out, strings.Fields(l)...)
	}
	return out
}

// moduleLog passes module loads to Actions and remembers what loaded, from every path that loads
// modules (modules=, coldplug, hot-plug events, filesystems), for the report.
type moduleLog struct {
	actions Actions
	mu      sync.Mutex
	loaded  []string

	// Once the media are found, module loads still going (a driver probing its other
	// devices inside finit_module, slow controllers) only compete with the install for the
	// CPUs: they run at low priority until something waits for them (see background).
	setNice  func(tid, nice int) // nil: priorities untouched (tests)
	behind   bool                // loads run at low priority
	inFlight map[int]bool        // threads inside LoadModule → lowered
}

// background moves module loading behind the boot (on) or back to normal priority (off),
// including the loads in flight. It must be off before anything waits for a load.
func (m *moduleLog) background(on bool) {
	if m.setNice == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.behind = on
	for tid, low := range m.inFlight {
		if low != on {
			m.inFlight[tid] = on
			m.setNice(tid, niceFor(on))
		}
	}
}

func niceFor(low bool) int {
	if low {
		return 19
	}
	return 0
}

func (m *moduleLog) LoadModule(path, params string) error {
	if m.setNice != nil {
		// The thread is this load's for its duration, so it can be re-prioritised from outside.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		tid := unix.Gettid()
		m.mu.Lock()
		if m.inFlight == nil {
			m.inFlight = map[int]bool{}
		}
		m.inFlight[tid] = m.behind
		if m.behind {
			m.setNice(tid, 19)
		}
		m.mu.Unlock()
		defer func() {
			m.mu.Lock()
			if m.inFlight[tid] {
				m.setNice(tid, 0) // the thread goes back to the Go scheduler
			}
			delete(m.inFlight, tid)
			m.mu.Unlock()
		}()
	}
	err := m.actions.LoadModule(path, params)
	if err == nil || errors.Is(err, os.ErrExist) {
		m.mu.Lock()
		m.loaded = append(m.loaded, coldplug.NormName(path))
		m.mu.Unlock()
	}
	return err
}

func (m *moduleLog) names() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.loaded...)
}

// prepareFS loads the modules a filesystem type needs before it is mounted (a load the vfat
// preload has in flight is awaited, not repeated).
func (s *state) prepareFS(fstype string) error {
	if s.loader == nil {
		return nil
	}
	s.fsPre.raise()
	s.mods.background(false) // a mount waits for these loads
	return s.loader.LoadFS(fstype)
}

// fsPreload is the filesystem preload's priority: lowered while nothing waits for it, raised
// for good once a mount does (before or after it was lowered).
type fsPreload struct {
	mu      sync.Mutex
	urgent  bool
	restore func() // undoes the lowering; nil when not lowered
}

// lower makes the calling goroutine's thread nice 19 (the goroutine stays locked to it, so the
// priority ends with it) unless a mount already waits.
func (p *fsPreload) lower(setNice func(tid, nice int)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.urgent || setNice == nil {
		return
	}
	runtime.LockOSThread()
	tid := unix.Gettid()
	setNice(tid, 19)
	p.restore = func() { setNice(tid, 0) }
}

func (p *fsPreload) raise() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.urgent = true
	if p.restore != nil {
		p.restore()
		p.restore = nil
	}
}

// rescan walks sysfs again for devices that appeared after the coldplug walk (the media search
// calls it once its uevent listener is open, so none falls in between).
func (s *state) rescan() {
	if s.loader != nil && s.bg != nil {
		s.bg.do(s.loader.Coldplug)
	}
}
