package boot

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

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
	s.mods = &moduleLog{actions: e.Actions}
	s.loader = coldplug.New(coldplug.Options{
		Index: ix, SysRoot: e.Root, Loader: s.mods, Blacklist: s.cfg.Blacklist, Params: s.cfg.ModParams,
		Sequential: e.SequentialModules,
		Log:        func(format string, args ...any) { e.Log.Debugf("modules", format, args...) },
	})
	explicit := append([]string(nil), s.cfg.Modules...)
	explicit = append(explicit, readList(e.path("etc/modules"))...)
	var errs []error
	s.addModules(s.loader.LoadNamed(explicit...), &errs)
	if e.SequentialModules {
		s.addModules(s.loader.Coldplug(), &errs)
		s.note("%d modules", len(s.report.Modules))
		return errors.Join(errs...)
	}
	// Coldplug runs on while the media are searched: the boot disk's driver chain shows up as
	// uevents the media search waits for, and slow unrelated drivers (ata_piix probes for 250 ms
	// under TCG) no longer delay it. Joined in the configure phase, before the modules are
	// copied and the initramfs freed.
	// The most common boot media filesystem's modules (vfat with its codepages) load in parallel
	// with the disk drivers, so they are in when a USB stick or disk image is probed; others
	// (isofs for a CD, whose drivers take longer anyway) load on demand.
	fsReady := make(chan struct{})
	s.fsReady = fsReady
	go func() {
		defer close(fsReady)
		defer func() { recover() }() // a panic here only costs the preload
		s.loader.LoadFS("vfat")
	}()
	done := make(chan coldplug.Report, 1)
	s.coldplug = done
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- coldplug.Report{Errors: []string{fmt.Sprintf("coldplug panic: %v", r)}}
			}
		}()
		done <- s.loader.Coldplug()
	}()
	s.note("%d modules; coldplug continues in the background", len(s.report.Modules))
	return errors.Join(errs...)
}

// joinColdplug waits for the background coldplug and records its outcome.
func (s *state) joinColdplug() error {
	if s.fsReady != nil {
		<-s.fsReady
	}
	if s.coldplug == nil {
		return nil
	}
	t0 := s.env.Now()
	rep := <-s.coldplug
	s.coldplug = nil
	var errs []error
	s.addModules(rep, &errs)
	s.note("coldplug joined after %.3fs (%d modules in all)", s.env.Now().Sub(t0).Seconds(), len(s.report.Modules))
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
}

func (m *moduleLog) LoadModule(path, params string) error {
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

// prepareFS loads the modules a filesystem type needs before it is mounted, after the preload
// (so no load is attempted twice at the same time).
func (s *state) prepareFS(fstype string) error {
	if s.fsReady != nil {
		<-s.fsReady
	}
	if s.loader == nil {
		return nil
	}
	return s.loader.LoadFS(fstype)
}
