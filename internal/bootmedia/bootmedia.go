// Package bootmedia finds Alpine boot media: block devices carrying a boot repository (a
// directory holding `.boot_repository`) or an apkovl, mounted read-only at MEDIAROOT/<dev>, the
// job nlplug-findfs does in Alpine's initramfs — event-driven, bounded, deterministic and logged.
//
// API:
//
//	res, err := bootmedia.Find(ctx, bootmedia.Options{
//		SysRoot: "/", DevRoot: "/dev", MediaRoot: "/media",
//		Mounter:   actions,                  // boot.Actions (Mount/Unmount); see MountFuncs for funcs
//		Events:    listener,                 // uevent.Source; nil = poll sysfs instead
//		OnEvent:   func(ev uevent.Event) { loader.HandleEvent(ev) }, // coldplug for hot-plugged devices
//		PrepareFS: loader.LoadFS,            // load isofs / vfat+nls before mount(2)
//		Rescan:    func() { loader.Coldplug() }, // catch devices added before Events was open
//		Timeout:   5 * time.Second,          // overall bound
//		USBDelay:  usbdelay,                 // usbdelay=N
//		Prefer:    []string{"LABEL=ALPINE"}, // media matching a hint sort first
//		Log:       logf,
//	})
//	res.Media     // every block device seen, kept ones first, each with Reason
//	res.Repos     // boot repositories on kept media, e.g. /media/vda/apks
//	res.Overlays  // apkovl candidates (top-level *.apkovl.tar.gz[.cipher]; never temp files)
//
// Detection follows nlplug-findfs (so existing media keep working): every block device with a
// known filesystem is mounted read-only at MEDIAROOT/<devname>; it is kept mounted if its top level
// has a directory containing `.boot_repository` or a file named like an apkovl, else unmounted.
// For kept media the repositories are the directories of every `.boot_repository` within three
// levels (initramfs-init's `find /media/* -maxdepth 3`). Overlay names are judged by
// overlay.ParseName: a leftover `x.apkovl.tar.gz.new` from an interrupted lbu commit, hidden
// files and non-cipher suffixes are rejected and logged, unlike Alpine.
//
// When to stop (no fixed sleeps; every wait is for an event, a device node, or a deadline):
//   - a repository and an overlay have been found and no device is still pending → stop at once;
//   - a repository has been found, no device is pending, no block uevent arrived for Settle
//     (default 150 ms) and USBDelay has passed since the first repository → stop;
//   - Timeout + USBDelay after the start → stop with whatever was found (possibly nothing).
//
// A device is pending while its sysfs entry exists but DEVROOT has no node yet (devtmpfs creates
// it moments later); the node is re-checked every 10 ms. A failed mount is retried once — after
// the next uevent (coldplug may have just loaded the filesystem or codepage modules) or 100 ms
// later, whichever is first, and at the latest just before Find returns.
//
// Find returns an error only for unusable options or an unreadable sysfs; "nothing found" is a
// Result with no repositories, for the boot plan to judge.
package bootmedia

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/ramboot/ramboot/internal/blkid"
	"github.com/ramboot/ramboot/internal/uevent"
	"github.com/ramboot/ramboot/overlay"
)

// Mounter is the kernel mount edge; boot.Actions satisfies it.
type Mounter interface {
	Mount(source, target, fstype string, flags uintptr, data string) error
	Unmount(target string, flags int) error
}

// MountFuncs adapts a pair of functions to Mounter.
type MountFuncs struct {
	MountFn   func(source, target, fstype string, flags uintptr, data string) error
	UnmountFn func(target string, flags int) error
}

// Mount implements Mounter.
func (m MountFuncs) Mount(source, target, fstype string, flags uintptr, data string) error {
	return m.MountFn(source, target, fstype, flags, data)
}

// Unmount implements Mounter.
func (m MountFuncs) Unmount(target string, flags int) error { return m.UnmountFn(target, flags) }

const (
	msRdonly  = 0x1 // MS_RDONLY
	mntDetach = 0x2 // MNT_DETACH

	// DefaultTimeout bounds the search when nothing (or no repository) is found; Alpine waits 5 s
	// of silence.
	DefaultTimeout = 5 * time.Second
	// DefaultSettle is how long to wait after the last block uevent for further media once a
	// repository is found without an overlay (Alpine: 250 ms after every event).
	DefaultSettle = 150 * time.Millisecond

	nodePoll = 10 * time.Millisecond // re-check for a device node devtmpfs has not created yet
	sysPoll  = 50 * time.Millisecond // sysfs re-scan interval when there is no event source
	// retryDelay is when a failed mount is retried if no uevent (e.g. a module load) comes first.
	retryDelay = 100 * time.Millisecond
)

// Options configures Find. SysRoot, DevRoot, MediaRoot and Mounter are required.
type Options struct {
	SysRoot   string // sysfs is SysRoot/sys
	DevRoot   string // device nodes, e.g. /dev
	MediaRoot string // mount points are MediaRoot/<devname>, e.g. /media
	Mounter   Mounter

	Events  uevent.Source      // hot-plug events; nil = re-scan sysfs every 50 ms instead
	OnEvent func(uevent.Event) // called for every event first (e.g. coldplug.Loader.HandleEvent)
	// PrepareFS loads what mounting fstype needs (e.g. coldplug.Loader.LoadFS); nil = nothing.
	PrepareFS func(fstype string) error
	// Rescan re-walks the devices for modules (e.g. func() { loader.Coldplug() }). Find runs it
	// in a goroutine at the start — the event source is open by then, so a device that appeared
	// before the listener (an async SCSI scan finding the CD) is not lost — after a uevent
	// overflow, and on every poll when there is no event source; never two at once. While one
	// runs, the "repository found, settled" rule waits for it (it may add devices), but
	// "repository and apkovl found" does not: Find can return while Rescan still loads slow
	// drivers, so the boot may hand its whole coldplug to Find and overlap it with the search.
	Rescan func()

	Timeout  time.Duration // 0 = DefaultTimeout
	Settle   time.Duration // 0 = DefaultSettle
	USBDelay time.Duration // usbdelay=N: extends Timeout and the wait after a repository is found

	// Prefer lists hints ("LABEL=x", "UUID=y", "vda", "/dev/vda") that sort matching media first.
	Prefer []string
	// IncludeVirtual also considers ram*, loop*, zram*, nbd* and fd* devices (skipped by default:
	// they hold nothing at this point of the boot, probing hundreds of ramdisks costs time, and an
	// empty floppy drive stalls reads for seconds).
	IncludeVirtual bool

	Log func(format string, args ...any)
}

// Medium is what happened to one block device.
type Medium struct {
	Dev        string        `json:"dev"`                  // kernel name: vda, sr0, sda1
	Node       string        `json:"node,omitempty"`       // device node used
	Info       blkid.Info    `json:"info"`                 // probed filesystem
	MountPoint string        `json:"mountpoint,omitempty"` // set while kept mounted
	Kept       bool          `json:"kept"`                 // mounted and holding a repository or overlay
	Preferred  bool          `json:"preferred,omitempty"`  // matched an Options.Prefer hint
	Repos      []string      `json:"repos,omitempty"`      // absolute repository directories
	Overlays   []string      `json:"overlays,omitempty"`   // absolute apkovl candidate paths
	Rejected   []string      `json:"rejected,omitempty"`   // "name: why" for apkovl-like files not taken
	Reason     string        `json:"reason"`               // why kept or not
	At         time.Duration `json:"at"`                   // since Find started, when last handled
	Seen       time.Duration `json:"seen"`                 // since Find started, when the device was first seen
}

// Result is the outcome of Find.
type Result struct {
	Media    []Medium      `json:"media"`    // kept first (preferred, repository, overlay), then by name
	Repos    []string      `json:"repos"`    // repositories of kept media, in Media order
	Overlays []string      `json:"overlays"` // overlay candidates of kept media, in Media order
	Elapsed  time.Duration `json:"elapsed"`
	Why      string        `json:"why"` // why the search stopped
	Log      []string      `json:"log"` // one line per decision
}

// Kept returns the media left mounted.
func (r *Result) Kept() []Medium {
	var out []Medium
	for _, m := range r.Media {
		if m.Kept {
			out = append(out, m)
		}
	}
	return out
}

// devState tracks one device across scans.
type devState struct {
	m        Medium
	final    bool      // nothing more to do unless a uevent says the device changed
	waitNode bool      // sysfs entry present, node not yet
	mountErr int       // failed mount attempts
	openErr  int       // probes that found the node not yet openable (ENXIO)
	retry    bool      // a failed mount (or, with reprobe, open) awaiting its retry
	reprobe  bool      // the retry probes again instead of only mounting
	retryAt  time.Time // retry then at the latest (sooner after a uevent)
}

// maxOpenRetries bounds the retries of a device whose node exists but cannot be opened yet:
// add_disk creates the sysfs entry and the node before the disk can be opened (ENXIO until then,
// and its "add" uevent comes only after), so a scan in that window must look again.
const maxOpenRetries = 5

type finder struct {
	opts  Options
	start time.Time
	devs  map[string]*devState
	log   []string
}

// Find discovers boot media; see the package comment for the rules.
func Find(ctx context.Context, opts Options) (*Result, error) {
	if opts.SysRoot == "" || opts.DevRoot == "" || opts.MediaRoot == "" || opts.Mounter == nil {
		return nil, errors.New("bootmedia: SysRoot, DevRoot, MediaRoot and Mounter are required")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Settle <= 0 {
		opts.Settle = DefaultSettle
	}
	if opts.Log == nil {
		opts.Log = func(string, ...any) {}
	}
	f := &finder{opts: opts, start: time.Now(), devs: map[string]*devState{}}
	deadline := f.start.Add(opts.Timeout + opts.USBDelay)

	// Events are read in a goroutine so the loop can wait on events and timers together.
	evCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var events chan evOrErr
	if opts.Events != nil {
		events = make(chan evOrErr)
		go pump(evCtx, opts.Events, events)
	}

	lastBlock := f.start
	var firstRepo time.Time
	why := ""
	var rescanDone chan struct{} // non-nil while a Rescan runs
	startRescan := func() {
		if f.opts.Rescan == nil || rescanDone != nil {
			return
		}
		done := make(chan struct{})
		rescanDone = done
		go func() {
			defer close(done)
			f.opts.Rescan()
		}()
	}
	startRescan()
	if err := f.scan(false); err != nil {
		return nil, err
	}
	for {
		now := time.Now()
		repo, ovl, pending := f.status()
		if repo && firstRepo.IsZero() {
			firstRepo = now
		}
		settleAt := lastBlock.Add(opts.Settle)
		if usb := firstRepo.Add(opts.USBDelay); repo && usb.After(settleAt) {
			settleAt = usb
		}
		switch {
		case repo && ovl && !pending:
			why = "repository and apkovl found"
		case repo && !pending && rescanDone == nil && !now.Before(settleAt):
			why = fmt.Sprintf("repository found, no further block device for %v", now.Sub(lastBlock).Round(time.Millisecond))
		case !now.Before(deadline):
			why = fmt.Sprintf("deadline %v reached", opts.Timeout+opts.USBDelay)
		case ctx.Err() != nil:
			why = "cancelled: " + ctx.Err().Error()
		}
		if why != "" {
			break
		}
		wake := deadline
		if repo && settleAt.Before(wake) {
			wake = settleAt
		}
		if t := f.nextRetry(); !t.IsZero() && t.Before(wake) {
			wake = t
		}
		if pending || events == nil {
			poll := sysPoll
			if pending {
				poll = nodePoll
			}
			if t := now.Add(poll); t.Before(wake) {
				wake = t
			}
		}
		timer := time.NewTimer(time.Until(wake))
		select {
		case e := <-events:
			timer.Stop()
			if e.err != nil {
				if errors.Is(e.err, uevent.ErrOverflow) {
					f.logf("uevent overflow: rescanning sysfs")
					lastBlock = time.Now()
					startRescan()
					if err := f.scan(true); err != nil {
						return nil, err
					}
					continue
				}
				// The source is gone (closed or failed): fall back to polling sysfs.
				f.logf("uevent source: %v; polling sysfs instead", e.err)
				events = nil
				continue
			}
			if opts.OnEvent != nil {
				opts.OnEvent(e.ev)
			}
			if e.ev.Subsystem == "block" {
				lastBlock = time.Now()
				f.blockEvent(e.ev)
			}
			if err := f.scan(true); err != nil {
				return nil, err
			}
		case <-rescanDone:
			timer.Stop()
			rescanDone = nil
			if err := f.scan(false); err != nil {
				return nil, err
			}
		case <-timer.C:
			if events == nil {
				startRescan() // no events: hot-plugged devices' modules are found by walking
			}
			if err := f.scan(false); err != nil {
				return nil, err
			}
		case <-ctx.Done():
			timer.Stop()
		}
	}
	cancel()
	// One last chance for mounts that failed (modules may have finished loading meanwhile).
	f.retryMounts()
	res := f.result()
	res.Why = why
	res.Elapsed = time.Since(f.start)
	f.logf("stopped after %v: %s", res.Elapsed.Round(time.Millisecond), why)
	res.Log = f.log
	return res, nil
}

type evOrErr struct {
	ev  uevent.Event
	err error
}

func pump(ctx context.Context, src uevent.Source, out chan<- evOrErr) {
	for {
		ev, err := src.Next(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil && !errors.Is(err, uevent.ErrOverflow) {
			select {
			case out <- evOrErr{err: err}:
			case <-ctx.Done():
			}
			return
		}
		select {
		case out <- evOrErr{ev: ev, err: err}:
		case <-ctx.Done():
			return
		}
	}
}

func (f *finder) logf(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	f.log = append(f.log, line)
	f.opts.Log("bootmedia: %s", line)
}

func (f *finder) since() time.Duration { return time.Since(f.start) }

// status reports whether a repository / overlay was found and whether any device is pending.
func (f *finder) status() (repo, ovl, pending bool) {
	for _, d := range f.devs {
		if d.m.Kept {
			repo = repo || len(d.m.Repos) > 0
			ovl = ovl || len(d.m.Overlays) > 0
		}
		if d.waitNode {
			pending = true
		}
	}
	return repo, ovl, pending
}

// blockEvent updates device state for a block uevent before the rescan.
func (f *finder) blockEvent(ev uevent.Event) {
	name := filepath.Base(ev.DevPath)
	d := f.devs[name]
	switch ev.Action {
	case "remove":
		if d == nil {
			return
		}
		if d.m.MountPoint != "" {
			// The medium is gone: detach so nothing uses a dead mount.
			if err := f.opts.Mounter.Unmount(d.m.MountPoint, mntDetach); err != nil {
				f.logf("%s: removed; detach %s: %v", name, d.m.MountPoint, err)
			}
		}
		f.logf("%s: removed", name)
		delete(f.devs, name)
	case "change":
		// A CD was inserted or a partition table re-read: probe again unless it is in use.
		if d != nil && !d.m.Kept {
			delete(f.devs, name)
		}
	case "add":
		if d != nil && d.retry {
			return // scan(true) retries it
		}
	}
}

// scan looks at every entry of SYSROOT/sys/class/block. afterEvent lets failed mounts retry once.
func (f *finder) scan(afterEvent bool) error {
	dir := filepath.Join(f.opts.SysRoot, "sys", "class", "block")
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil // no block subsystem yet (driver not loaded): wait for events
		}
		return fmt.Errorf("bootmedia: %w", err)
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, name := range names {
		d := f.devs[name]
		if d == nil {
			d = &devState{m: Medium{Dev: name, Seen: f.since()}}
			f.devs[name] = d
		}
		if d.retry && (afterEvent || !time.Now().Before(d.retryAt)) {
			f.runRetry(d)
			continue
		}
		if d.final || d.retry {
			continue
		}
		f.handle(d)
	}
	return nil
}

// nextRetry is the earliest scheduled mount retry, zero if none.
func (f *finder) nextRetry() time.Time {
	var t time.Time
	for _, d := range f.devs {
		if d.retry && (t.IsZero() || d.retryAt.Before(t)) {
			t = d.retryAt
		}
	}
	return t
}

// runRetry runs a device's scheduled retry: the probe again after an early open failure, else
// the mount.
func (f *finder) runRetry(d *devState) {
	d.retry = false
	if d.reprobe {
		d.reprobe = false
		f.handle(d)
		return
	}
	f.mountAndScan(d)
}

func (f *finder) retryMounts() {
	names := make([]string, 0, len(f.devs))
	for n := range f.devs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if d := f.devs[n]; d.retry {
			f.runRetry(d)
		}
	}
}

// skipKind says why a device is never boot media by its name: RAM disks, loop, zram and nbd
// devices hold nothing this early (and there can be hundreds), and probing a floppy drive
// without a disk stalls for seconds in driver timeouts.
func skipKind(name string) string {
	for _, p := range []string{"ram", "loop", "zram", "nbd"} {
		if strings.HasPrefix(name, p) {
			return "virtual device"
		}
	}
	if strings.HasPrefix(name, "fd") {
		return "floppy drive"
	}
	return ""
}

// handle probes a device whose node exists and mounts it.
func (f *finder) handle(d *devState) {
	name := d.m.Dev
	sys := filepath.Join(f.opts.SysRoot, "sys", "class", "block", name)
	if kind := skipKind(name); kind != "" && !f.opts.IncludeVirtual {
		f.finish(d, "skipped: "+kind)
		return
	}
	if b, err := os.ReadFile(filepath.Join(sys, "size")); err == nil && strings.TrimSpace(string(b)) == "0" {
		// An empty CD drive or card reader; a "change" uevent announces a medium.
		f.finish(d, "skipped: no medium (size 0)")
		return
	}
	devname := name
	if b, err := os.ReadFile(filepath.Join(sys, "uevent")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "DEVNAME="); ok && v != "" {
				devname = v
			}
		}
	}
	d.m.Node = filepath.Join(f.opts.DevRoot, devname)
	if _, err := os.Stat(d.m.Node); err != nil {
		if !d.waitNode {
			f.logf("%s: waiting for device node %s", name, d.m.Node)
		}
		d.waitNode = true
		return
	}
	d.waitNode = false
	info, err := blkid.ProbeFile(d.m.Node)
	if errors.Is(err, syscall.ENXIO) && d.openErr < maxOpenRetries {
		d.openErr++
		d.retry, d.reprobe = true, true
		d.retryAt = time.Now().Add(retryDelay)
		d.m.Reason = fmt.Sprintf("not openable yet (will retry): %v", err)
		d.m.At = f.since()
		f.logf("%s: %s", name, d.m.Reason)
		return
	}
	if err != nil {
		if errors.Is(err, blkid.ErrUnknown) {
			f.finish(d, "skipped: "+strings.TrimPrefix(err.Error(), "blkid "+d.m.Node+": "))
		} else {
			f.finish(d, "skipped: probe failed: "+err.Error())
		}
		return
	}
	d.m.Info = info
	d.m.Preferred = f.preferred(d.m)
	if info.Type == "jbd" || info.Type == "squashfs3" {
		f.finish(d, "skipped: "+info.Type+" is not mountable as media")
		return
	}
	if twin := f.twin(d); twin != "" {
		// An isohybrid image written to a USB stick shows the same ISO9660 filesystem on the disk
		// and on its first partition; mounting both would list every repository twice.
		f.finish(d, "skipped: same filesystem as "+twin+" (UUID "+info.UUID+")")
		return
	}
	if f.opts.PrepareFS != nil {
		if err := f.opts.PrepareFS(info.Type); err != nil {
			f.logf("%s: preparing %s: %v (mounting anyway)", name, info.Type, err)
		}
	}
	f.mountAndScan(d)
}

// twin returns the device already kept with the same filesystem identity as d, if any.
func (f *finder) twin(d *devState) string {
	if d.m.Info.UUID == "" {
		return ""
	}
	var names []string
	for n, o := range f.devs {
		if o != d && o.m.Kept && o.m.Info == d.m.Info {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		return ""
	}
	return names[0]
}

func (f *finder) finish(d *devState, reason string) {
	d.final = true
	d.waitNode = false
	d.m.Reason = reason
	d.m.At = f.since()
	f.logf("%s: %s", d.m.Dev, f.describe(d.m))
}

func (f *finder) describe(m Medium) string {
	var b strings.Builder
	if m.Info.Type != "" {
		fmt.Fprintf(&b, "(%s", m.Info.Type)
		if m.Info.Label != "" {
			fmt.Fprintf(&b, " LABEL=%q", m.Info.Label)
		}
		if m.Info.UUID != "" {
			fmt.Fprintf(&b, " UUID=%s", m.Info.UUID)
		}
		b.WriteString(") ")
	}
	fmt.Fprintf(&b, "at %v (seen at %v): %s", m.At.Round(time.Millisecond), m.Seen.Round(time.Millisecond), m.Reason)
	for _, r := range m.Rejected {
		fmt.Fprintf(&b, "; ignored %s", r)
	}
	return b.String()
}

// mountAndScan mounts d read-only, scans the top level and unmounts it when it holds nothing.
func (f *finder) mountAndScan(d *devState) {
	mp := filepath.Join(f.opts.MediaRoot, filepath.Base(d.m.Node))
	if err := os.MkdirAll(mp, 0o755); err != nil {
		f.finish(d, fmt.Sprintf("skipped: mount point: %v", err))
		return
	}
	if err := f.opts.Mounter.Mount(d.m.Node, mp, d.m.Info.Type, msRdonly, ""); err != nil {
		d.mountErr++
		os.Remove(mp)
		if d.mountErr < 2 {
			// vfat fails with EINVAL until nls_cp437/nls_ascii are loaded, isofs is absent until
			// coldplug loads it: retry once after the next event or before giving up.
			d.retry = true
			d.retryAt = time.Now().Add(retryDelay)
			d.m.Reason = fmt.Sprintf("mount %s read-only as %s failed (will retry): %v", d.m.Node, d.m.Info.Type, err)
			d.m.At = f.since()
			f.logf("%s: %s", d.m.Dev, d.m.Reason)
			return
		}
		f.finish(d, fmt.Sprintf("skipped: mount %s read-only as %s failed twice: %v", d.m.Node, d.m.Info.Type, err))
		return
	}
	repos, ovls, rejected, topRepo, err := scanMedium(mp)
	d.m.Rejected = rejected
	if err != nil || (!topRepo && len(ovls) == 0) {
		reason := "unmounted: no directory with .boot_repository and no apkovl at the top level"
		if err != nil {
			reason = "unmounted: " + err.Error()
		}
		if uerr := f.opts.Mounter.Unmount(mp, 0); uerr != nil {
			// Leave it mounted but not kept; say so rather than pretend it is gone.
			d.m.MountPoint = mp
			reason += fmt.Sprintf(" (unmount failed: %v)", uerr)
		} else {
			os.Remove(mp)
		}
		f.finish(d, reason)
		return
	}
	d.m.MountPoint, d.m.Kept, d.m.Repos, d.m.Overlays = mp, true, repos, ovls
	var what []string
	if len(repos) > 0 {
		what = append(what, "repository "+strings.Join(repos, ", "))
	}
	if len(ovls) > 0 {
		what = append(what, "apkovl "+strings.Join(ovls, ", "))
	}
	f.finish(d, "kept at "+mp+": "+strings.Join(what, "; "))
}

// scanMedium inspects a mounted medium. topRepo is nlplug-findfs's keep rule (a top-level
// directory holding .boot_repository); repos are all marker directories within three levels.
func scanMedium(mp string) (repos, ovls, rejected []string, topRepo bool, err error) {
	ents, err := os.ReadDir(mp)
	if err != nil {
		return nil, nil, nil, false, fmt.Errorf("read %s: %w", mp, err)
	}
	for _, e := range ents {
		name := e.Name()
		p := filepath.Join(mp, name)
		if e.IsDir() {
			if exists(filepath.Join(p, ".boot_repository")) {
				topRepo = true
			}
			continue
		}
		if !strings.Contains(name, ".apkovl.tar.gz") {
			continue
		}
		if _, _, ok, why := overlay.ParseName(name); !ok {
			rejected = append(rejected, name+": "+why)
			continue
		}
		if !e.Type().IsRegular() {
			rejected = append(rejected, name+": not a regular file")
			continue
		}
		ovls = append(ovls, p)
	}
	if topRepo || len(ovls) > 0 {
		repos = findRepos(mp, 3)
	}
	return repos, ovls, rejected, topRepo, nil
}

// findRepos mirrors `find MP -maxdepth DEPTH -name .boot_repository` (depth counted from MP's
// entries, like find /media/* -maxdepth 3) returning the markers' directories in lexical order.
func findRepos(dir string, depth int) []string {
	var out []string
	if exists(filepath.Join(dir, ".boot_repository")) {
		out = append(out, dir)
	}
	if depth <= 1 {
		return out
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return out
	}
	for _, e := range ents {
		if e.IsDir() { // DirEntry.IsDir does not follow symlinks: no loops
			out = append(out, findRepos(filepath.Join(dir, e.Name()), depth-1)...)
		}
	}
	return out
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// preferred reports whether m matches one of the Prefer hints.
func (f *finder) preferred(m Medium) bool {
	for _, h := range f.opts.Prefer {
		switch {
		case strings.HasPrefix(h, "LABEL="):
			if m.Info.Label != "" && m.Info.Label == strings.TrimPrefix(h, "LABEL=") {
				return true
			}
		case strings.HasPrefix(h, "UUID="):
			if m.Info.UUID != "" && strings.EqualFold(m.Info.UUID, strings.TrimPrefix(h, "UUID=")) {
				return true
			}
		default:
			if filepath.Base(h) == m.Dev || h == m.Node {
				return true
			}
		}
	}
	return false
}

// result orders media deterministically: kept before not kept; among kept, preferred first, then
// those with a repository, then those with an overlay; ties by device name.
func (f *finder) result() *Result {
	res := &Result{}
	for _, d := range f.devs {
		if d.waitNode {
			d.m.Reason = "skipped: device node " + d.m.Node + " never appeared"
			d.m.At = f.since()
			f.logf("%s: %s", d.m.Dev, d.m.Reason)
		}
		res.Media = append(res.Media, d.m)
	}
	rank := func(m Medium) int {
		r := 0
		if !m.Kept {
			r += 8
		}
		if !m.Preferred {
			r += 4
		}
		if len(m.Repos) == 0 {
			r += 2
		}
		if len(m.Overlays) == 0 {
			r++
		}
		return r
	}
	sort.Slice(res.Media, func(i, j int) bool {
		ri, rj := rank(res.Media[i]), rank(res.Media[j])
		if ri != rj {
			return ri < rj
		}
		return res.Media[i].Dev < res.Media[j].Dev
	})
	for i, m := range res.Media {
		if m.Kept {
			res.Repos = append(res.Repos, m.Repos...)
			res.Overlays = append(res.Overlays, m.Overlays...)
			f.logf("candidate %d: %s %s", i+1, m.Dev, m.Reason)
		}
	}
	return res
}
