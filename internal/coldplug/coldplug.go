// Package coldplug loads the kernel modules that the devices present in sysfs (and the devices
// that appear later, via uevents) need, the job nlplug-findfs does with libkmod.
//
// API (all kernel effects go through the injected ModuleLoader, e.g. boot.Actions):
//
//	ix, _ := kmod.Load("/lib/modules/" + release)
//	l := coldplug.New(coldplug.Options{
//		Index: ix, SysRoot: "/", Loader: actions,
//		Blacklist: []string{"floppy"},             // blacklist=a,b
//		Params:    map[string]string{"loop": "max_loop=8"}, // mod.param= from the cmdline
//		Log:       logf,
//	})
//	l.LoadNamed("loop", "squashfs", "sd-mod")     // modules=a,b (explicit: blacklist not applied)
//	rep := l.Coldplug()                           // sysfs modalias walk to a fixed point
//	l.HandleEvent(ev)                             // a uevent: loads for ACTION=add MODALIAS=...
//	l.LoadFS("vfat")                              // vfat + nls_cp437 + nls_ascii before mount(2)
//
// Rules:
//   - Modaliases come from SYSROOT/sys/bus/*/devices/*/modalias (cheap: one glob, no deep walk);
//     after loading, the walk repeats until no new modalias appears, because a driver such as
//     virtio_pci registers child devices (virtio:d00000002...) that need further modules.
//   - A modalias is matched once; module names from the matches are loaded in sorted order, so
//     the load order is deterministic (modules.alias order says nothing useful).
//   - blacklist applies to alias matches only, like modprobe's KMOD_PROBE_APPLY_BLACKLIST: an
//     explicit modules= entry or a dependency of a wanted module is still loaded.
//   - Each module file is loaded at most once; EEXIST ("already loaded") counts as success;
//     built-in modules (Resolve → no files) are skipped; unknown modules are reported, not fatal.
//   - Modules matched by aliases load in parallel, one goroutine per matched module: each chain
//     loads its dependencies first, a file needed by several chains is loaded once and awaited
//     by the others, so no module is inserted before its dependencies are in. The same holds
//     across calls: LoadFS, LoadNamed, Coldplug and HandleEvent return only when the modules
//     they need are loaded, even if another goroutine is the one loading them. finit_module
//     costs 4-10 ms per module under TCG but drivers like ata_piix spend 100+ ms probing in
//     their init; in parallel the boot disk's driver does not wait for them. Reports still list
//     loads in a deterministic plan order. modules= (LoadNamed) loads in the given order, like
//     modprobe -a. Options.Sequential turns parallel loading off.
//
// A Loader is safe for concurrent use (HandleEvent may run in an event goroutine while Coldplug
// runs in another).
package coldplug

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ramboot/ramboot/internal/uevent"
)

// Index is the part of *kmod.Index coldplug needs.
type Index interface {
	// Resolve returns module file paths relative to Dir(), dependencies first; nil for built-ins.
	Resolve(name string) ([]string, error)
	// MatchAlias returns the names of modules whose alias glob matches modalias.
	MatchAlias(modalias string) []string
	// Dir is the lib/modules/RELEASE directory the paths are relative to.
	Dir() string
}

// ModuleLoader loads one module file (finit_module); boot.Actions satisfies it.
type ModuleLoader interface {
	LoadModule(path, params string) error
}

// Options configures a Loader.
type Options struct {
	Index     Index
	SysRoot   string // "/" at boot; a t.TempDir() fake tree in tests
	Loader    ModuleLoader
	Blacklist []string          // module names (- and _ equivalent)
	Params    map[string]string // module name → parameters passed to LoadModule
	// Sequential loads matched modules one chain after another instead of in parallel.
	Sequential bool
	Log        func(format string, args ...any)
}

// Loaded is one module file load attempt, for the boot report.
type Loaded struct {
	Module   string        // module name
	Path     string        // absolute module file path
	Reason   string        // "modules=", "alias pci:v...", "dependency of X", "filesystem vfat"
	Err      string        // "" on success (including already loaded)
	Duration time.Duration // time spent in LoadModule
}

// Report summarises one Coldplug/LoadNamed/HandleEvent call.
type Report struct {
	Modaliases  int      // distinct modaliases seen
	Loaded      []Loaded // attempts, in order
	Blacklisted []string // "module (alias X)"
	Unmatched   int      // modaliases no module claims (normal: most devices have built-in drivers or none)
	Errors      []string // non-fatal problems, each naming the module or file
}

// Loader tracks what has been matched and loaded.
type Loader struct {
	opts      Options
	blacklist map[string]bool

	mu   sync.Mutex      // guards seen
	seen map[string]bool // modaliases already matched

	loadMu sync.Mutex           // guards files (not held while loading)
	files  map[string]*fileLoad // module file path → its (possibly running or finished) load
}

// New returns a Loader; Options.Index and Options.Loader are required.
func New(opts Options) *Loader {
	if opts.SysRoot == "" {
		opts.SysRoot = "/"
	}
	if opts.Log == nil {
		opts.Log = func(string, ...any) {}
	}
	bl := map[string]bool{}
	for _, m := range opts.Blacklist {
		if m = strings.TrimSpace(m); m != "" {
			bl[NormName(m)] = true
		}
	}
	return &Loader{opts: opts, blacklist: bl, seen: map[string]bool{}, files: map[string]*fileLoad{}}
}

// NormName normalises a module name: '-' and '_' are equivalent, file suffixes are dropped.
func NormName(name string) string {
	name = filepath.Base(name)
	for _, suf := range []string{".gz", ".xz", ".zst"} {
		name = strings.TrimSuffix(name, suf)
	}
	name = strings.TrimSuffix(name, ".ko")
	return strings.ReplaceAll(name, "-", "_")
}

// LoadNamed loads modules by name (cmdline modules=, fs modules), blacklist not applied.
func (l *Loader) LoadNamed(names ...string) Report {
	var rep Report
	for _, n := range names {
		if n = strings.TrimSpace(n); n != "" {
			l.load(&rep, NormName(n), "modules=")
		}
	}
	return rep
}

// fsModules maps a blkid type to the modules mount(2) needs. There is no modprobe in the
// initramfs for the kernel's request_module("fs-vfat"), and vfat mounts fail with EINVAL
// unless the default codepage and iocharset (cp437, ascii on Debian kernels) are loaded.
func fsModules(fstype string) []string {
	switch fstype {
	case "vfat", "msdos":
		return []string{"vfat", "nls_cp437", "nls_ascii"}
	case "iso9660":
		return []string{"isofs"}
	case "ext2", "ext3", "ext4", "jbd":
		return []string{"ext4"}
	case "squashfs":
		return []string{"squashfs"}
	case "":
		return nil
	default:
		return []string{fstype} // btrfs, xfs, exfat, f2fs, udf, ntfs3: module named like the fs
	}
}

// LoadFS loads what mounting fstype needs. Modules that are built in or absent are fine (the
// mount itself reports a missing filesystem); the error is non-nil only if a load failed. It
// returns only when every module is in: a load another goroutine started (a preload, a
// concurrent LoadFS) is awaited, and its failure is this call's failure too.
func (l *Loader) LoadFS(fstype string) error {
	var rep Report
	var errs []string
	for _, m := range fsModules(fstype) {
		name := NormName(m)
		lds, waited := l.run(l.plan(&rep, name, "filesystem "+fstype))
		rep.Loaded = append(rep.Loaded, lds...)
		for _, ld := range lds {
			if ld.Err != "" {
				errs = append(errs, ld.Err)
			}
		}
		errs = append(errs, waited...)
	}
	if len(errs) > 0 {
		return fmt.Errorf("modules for filesystem %s: %s", fstype, strings.Join(errs, "; "))
	}
	return nil
}

// Coldplug matches every modalias under SYSROOT/sys/bus/*/devices and loads the modules, repeating
// until no new modalias appears (bounded to 8 rounds as a guard against a flapping tree).
func (l *Loader) Coldplug() Report {
	var rep Report
	for round := 0; round < 8; round++ {
		aliases, err := l.scan()
		if err != nil {
			rep.Errors = append(rep.Errors, err.Error())
			return rep
		}
		var fresh []string
		l.mu.Lock()
		for _, a := range aliases {
			if !l.seen[a] {
				l.seen[a] = true
				fresh = append(fresh, a)
			}
		}
		l.mu.Unlock()
		if len(fresh) == 0 {
			break
		}
		rep.Modaliases += len(fresh)
		before := len(rep.Loaded)
		l.loadAliases(&rep, fresh)
		if len(rep.Loaded) == before {
			break // nothing loaded, so no new devices can have appeared because of us
		}
	}
	return rep
}

// HandleEvent loads modules for a uevent's MODALIAS (ACTION=add only; bind/change carry the same
// alias again). It returns the report of that event (empty when there was nothing to do).
func (l *Loader) HandleEvent(ev uevent.Event) Report {
	var rep Report
	modalias := ev.Modalias
	if ev.Action != "add" || modalias == "" {
		return rep
	}
	l.mu.Lock()
	fresh := !l.seen[modalias]
	l.seen[modalias] = true
	l.mu.Unlock()
	if fresh {
		rep.Modaliases = 1
		l.loadAliases(&rep, []string{modalias})
	}
	return rep
}

// scan returns the sorted distinct modaliases of devices in sysfs.
func (l *Loader) scan() ([]string, error) {
	pattern := filepath.Join(l.opts.SysRoot, "sys", "bus", "*", "devices", "*", "modalias")
	files, err := filepath.Glob(pattern)
	if err != nil {
		return nil, fmt.Errorf("coldplug: glob %s: %w", pattern, err)
	}
	set := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // device went away between glob and read
		}
		if a := strings.TrimSpace(string(b)); a != "" {
			set[a] = true
		}
	}
	out := make([]string, 0, len(set))
	for a := range set {
		out = append(out, a)
	}
	sort.Strings(out)
	return out, nil
}

// loadAliases matches aliases and loads the union of matching modules in name order.
func (l *Loader) loadAliases(rep *Report, aliases []string) {
	why := map[string]string{}
	aliases = l.withPredicted(aliases)
	for _, a := range aliases {
		mods := l.opts.Index.MatchAlias(a)
		if len(mods) == 0 {
			rep.Unmatched++
			continue
		}
		for _, m := range mods {
			m = NormName(m)
			if l.blacklist[m] {
				rep.Blacklisted = append(rep.Blacklisted, fmt.Sprintf("%s (alias %s)", m, a))
				l.opts.Log("coldplug: %s blacklisted, not loaded for %s", m, a)
				continue
			}
			if _, ok := why[m]; !ok {
				why[m] = "alias " + a
			}
		}
	}
	names := make([]string, 0, len(why))
	for m := range why {
		names = append(names, m)
	}
	sort.Strings(names)
	l.loadParallel(rep, names, why)
}

// withPredicted adds, for each virtio PCI function among aliases, the modalias of the virtio
// device virtio_pci will register for it (marked seen, so its uevent is not matched again). Its
// driver (virtio_blk for the boot disk) then loads beside virtio_pci instead of after it: the
// device binds the moment virtio_pci's probe registers it, instead of a uevent and a module load
// later (50-100 ms under TCG).
func (l *Loader) withPredicted(aliases []string) []string {
	out := aliases
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range aliases {
		child, ok := VirtioChild(a)
		if !ok || l.seen[child] {
			continue
		}
		l.seen[child] = true
		if len(out) == len(aliases) {
			out = append([]string(nil), aliases...)
		}
		out = append(out, child)
	}
	return out
}

// VirtioChild returns the modalias ("virtio:dDDDDDDDDvVVVVVVVV") of the virtio device behind a
// virtio PCI function's modalias, as the virtio_pci driver will register it: the device type is
// the PCI subsystem device ID for transitional devices (PCI IDs 0x1000-0x103f) and PCI device ID
// minus 0x1040 for modern ones; the vendor is the PCI subsystem vendor. ok is false for anything
// else.
func VirtioChild(pciAlias string) (string, bool) {
	var vendor, device, subVendor, subDevice uint32
	// The class fields after sd… do not matter (Sscanf leaves them unread).
	if _, err := fmt.Sscanf(pciAlias, "pci:v%08Xd%08Xsv%08Xsd%08X", &vendor, &device, &subVendor, &subDevice); err != nil || vendor != 0x1af4 {
		return "", false
	}
	var id uint32
	switch {
	case device >= 0x1000 && device <= 0x103f:
		id = subDevice
	case device >= 0x1040 && device <= 0x107f:
		id = device - 0x1040
	default:
		return "", false
	}
	if id == 0 {
		return "", false
	}
	return fmt.Sprintf("virtio:d%08Xv%08X", id, subVendor), true
}

// fileLoad is one module file's load, a future shared by every chain and every call that needs
// the file: the first to plan it loads it, the others wait for done and then see err. A file is
// attempted once; later plans find the finished future and go straight on.
type fileLoad struct {
	done chan struct{} // closed when the load attempt has finished
	err  string        // the attempt's error ("" = loaded or already loaded); set before done is closed
}

// step is one file of a load plan.
type step struct {
	rel, mod, reason string
	own              bool      // this plan loads the file (else another chain/earlier call did)
	fl               *fileLoad // shared state of the file
}

// plan resolves name into steps (dependencies first), claiming the files not yet claimed. Files
// another plan claimed become steps that wait for that load, so every caller returns only after
// the whole chain is in, whoever loaded it. (Marking a module as done when it was merely planned
// let a concurrent LoadFS return before its modules were loaded, and the mount failed.)
func (l *Loader) plan(rep *Report, name, reason string) []step {
	paths, err := l.opts.Index.Resolve(name)
	if err != nil {
		rep.Errors = append(rep.Errors, fmt.Sprintf("%s (%s): %v", name, reason, err))
		l.opts.Log("coldplug: %s (%s): %v", name, reason, err)
		return nil
	}
	l.loadMu.Lock()
	defer l.loadMu.Unlock()
	steps := make([]step, 0, len(paths))
	for i, rel := range paths {
		st := step{rel: rel, mod: NormName(rel), reason: reason}
		if i < len(paths)-1 {
			st.reason = "dependency of " + name
		}
		if fl, ok := l.files[rel]; ok {
			st.fl = fl
		} else {
			st.fl = &fileLoad{done: make(chan struct{})}
			l.files[rel] = st.fl
			st.own = true
		}
		steps = append(steps, st)
	}
	return steps
}

// run executes a plan: own files are loaded, the others awaited, strictly in order, so a module
// is never inserted before its dependencies have finished loading. It returns the loads it made
// and the errors of the awaited loads (reported by whoever made them).
func (l *Loader) run(steps []step) (loaded []Loaded, waited []string) {
	for _, st := range steps {
		if !st.own {
			<-st.fl.done
			if st.fl.err != "" {
				waited = append(waited, st.fl.err)
			}
			continue
		}
		abs := filepath.Join(l.opts.Index.Dir(), st.rel)
		start := time.Now()
		err := l.opts.Loader.LoadModule(abs, l.opts.Params[st.mod])
		ld := Loaded{Module: st.mod, Path: abs, Reason: st.reason, Duration: time.Since(start)}
		if err != nil && !errors.Is(err, os.ErrExist) { // EEXIST: already loaded
			ld.Err = fmt.Sprintf("load %s: %v", abs, err)
			l.opts.Log("coldplug: %s", ld.Err)
		} else {
			l.opts.Log("coldplug: loaded %s (%s) in %v", st.mod, st.reason, ld.Duration.Round(time.Microsecond))
		}
		st.fl.err = ld.Err
		close(st.fl.done)
		loaded = append(loaded, ld)
	}
	return loaded, waited
}

// load resolves name and loads its files (dependencies first) that were not attempted yet,
// waiting for those that are being loaded elsewhere.
func (l *Loader) load(rep *Report, name, reason string) {
	lds, _ := l.run(l.plan(rep, name, reason))
	rep.Loaded = append(rep.Loaded, lds...)
}

// loadParallel loads several modules at once: each chain runs in its own goroutine, shared
// dependencies are loaded once and awaited by the others. A slow driver (ata_piix probes its
// ports for 100+ ms under TCG) then no longer delays virtio_blk and the boot disk. The report
// lists the loads in plan order (names sorted, dependencies first), not completion order.
func (l *Loader) loadParallel(rep *Report, names []string, why map[string]string) {
	plans := make([][]step, len(names))
	for i, m := range names {
		plans[i] = l.plan(rep, m, why[m])
	}
	results := make([][]Loaded, len(names))
	var wg sync.WaitGroup
	for i := range plans {
		if len(plans[i]) == 0 {
			continue
		}
		if l.opts.Sequential {
			results[i], _ = l.run(plans[i])
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], _ = l.run(plans[i])
		}()
	}
	wg.Wait()
	for _, r := range results {
		rep.Loaded = append(rep.Loaded, r...)
	}
}
