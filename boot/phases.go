package boot

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/ramboot/ramboot/internal/coldplug"
	"github.com/ramboot/ramboot/internal/tmpfs"
	"golang.org/x/sys/unix"
)

// earlyMounts mounts the pseudo filesystems with Alpine's options and attaches /dev/kmsg.
func earlyMounts(ctx context.Context, s *state) error {
	e := s.env
	mounts := []struct {
		source, target, fstype string
		flags                  uintptr
		data                   string
		fatal                  bool
	}{
		{"proc", "proc", "proc", MSNoexec | MSNosuid | MSNodev, "", true},
		{"sysfs", "sys", "sysfs", MSNoexec | MSNosuid | MSNodev, "", true},
		{"devtmpfs", "dev", "devtmpfs", MSNosuid, "mode=0755,size=2M", true},
		{"devpts", "dev/pts", "devpts", MSNoexec | MSNosuid, "gid=5,mode=0620", false},
		{"shm", "dev/shm", "tmpfs", MSNodev | MSNosuid | MSNoexec, "", false},
		// /run is mounted here and moved into the new root: OpenRC keeps an already mounted /run,
		// so the boot report survives the handover.
		{"run", "run", "tmpfs", MSNosuid | MSNodev, "mode=0755", false},
	}
	for _, m := range mounts {
		target := e.path(m.target)
		if err := os.MkdirAll(target, 0o755); err != nil {
			return fmt.Errorf("mkdir %s: %w", target, err)
		}
		err := e.Actions.Mount(m.source, target, m.fstype, m.flags, m.data)
		// EBUSY: already mounted (kernel automount, re-exec); that is what we wanted.
		if err != nil && !errors.Is(err, unix.EBUSY) {
			if m.fatal {
				return fmt.Errorf("mount %s on /%s: %w", m.fstype, m.target, err)
			}
			msg := fmt.Sprintf("mount %s on /%s: %v", m.fstype, m.target, err)
			s.report.Warnings = append(s.report.Warnings, "early-mounts: "+msg)
			e.Log.Warnf("early-mounts", "%s", msg)
		}
		if m.target == "proc" {
			if b, err := os.ReadFile(e.path("proc/uptime")); err == nil {
				if f := strings.Fields(string(b)); len(f) > 0 {
					if up, err := strconv.ParseFloat(f[0], 64); err == nil {
						s.report.UptimeAtInitMS = up*1000 - ms(e.Now().Sub(s.start))
					}
				}
			}
		}
		if m.target == "dev" {
			s.attachKmsg() // as soon as /dev exists, so later failures reach the kernel log
		}
	}
	return nil
}

// attachKmsg starts logging to /dev/kmsg and applies quiet from the first line on.
func (s *state) attachKmsg() {
	e := s.env
	// quiet must hold from the first line (this phase's own timing line).
	if b, err := os.ReadFile(e.path("proc/cmdline")); err == nil {
		e.Log.SetQuiet(ParseCmdline(string(b)).Quiet)
	}
	if f, err := os.OpenFile(e.path("dev/kmsg"), os.O_WRONLY, 0); err == nil {
		level := 0
		if b, err := os.ReadFile(e.path("proc/sys/kernel/printk")); err == nil {
			if f := strings.Fields(string(b)); len(f) > 0 {
				level, _ = strconv.Atoi(f[0])
			}
		}
		e.Log.AttachKmsg(f, level)
	} else {
		s.note("no kernel log: %v", err)
	}
}

// readCmdline parses /proc/cmdline and applies quiet/debug_init and blacklist=.
func readCmdline(ctx context.Context, s *state) error {
	data, err := os.ReadFile(s.env.path("proc/cmdline"))
	if err != nil {
		return fmt.Errorf("read kernel command line: %w", err)
	}
	line := strings.TrimSpace(string(data))
	s.cfg = ParseCmdline(line)
	s.report.Cmdline = line
	s.env.Log.SetQuiet(s.cfg.Quiet)
	s.env.Log.SetDebug(s.cfg.Debug)
	for _, w := range s.cfg.Warnings {
		s.report.Warnings = append(s.report.Warnings, w)
		s.env.Log.Warnf("cmdline", "%s", w)
	}
	if len(s.cfg.Blacklist) > 0 {
		// Alpine writes this file; keep it so modprobe in the initramfs (if any) agrees.
		var b strings.Builder
		for _, m := range s.cfg.Blacklist {
			fmt.Fprintf(&b, "blacklist %s\n", m)
		}
		p := s.env.path("etc/modprobe.d/boot-opt-blacklist.conf")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			return fmt.Errorf("blacklist: %w", err)
		}
	}
	return nil
}

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

func isURL(s string) bool {
	for _, p := range []string{"http://", "https://", "ftp://"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// findMedia waits (event-driven, bounded) for boot media and picks the repositories.
func findMedia(ctx context.Context, s *state) error {
	e := s.env
	if e.Deps.Media == nil {
		return fmt.Errorf("no media discovery configured")
	}
	req := MediaRequest{
		Root: e.Root, DevRoot: e.path("dev"), MediaRoot: e.path("media"),
		Deadline: s.cfg.MediaWait, Grace: s.cfg.USBDelay,
		Mounter: e.Actions, Loader: s.loader,
		Log: func(format string, args ...any) { e.Log.Debugf("media", format, args...) },
	}
	res, err := e.Deps.Media(ctx, req)
	if res != nil {
		s.media = res.Media
		s.report.Media = res.Media
		s.report.MediaLog = res.Log
	}
	if err != nil {
		return fmt.Errorf("boot media: %w", err)
	}
	if res != nil && res.Why != "" {
		s.note("%s", res.Why)
	}
	for _, m := range s.media {
		s.note("%s (%s %q) at %s", m.Device, m.FSType, m.Label, e.rel(m.Mountpoint))
	}
	s.findRepos()
	if len(s.repos) == 0 {
		return fmt.Errorf("no boot repository found within %s (no medium with a top-level directory holding .boot_repository; see the media log)", s.cfg.MediaWait)
	}
	return nil
}

// findRepos picks the install repositories: alpine_repo=, else every kept medium's.
func (s *state) findRepos() {
	e := s.env
	s.repos = nil
	if len(s.cfg.Repos) > 0 {
		for _, r := range s.cfg.Repos {
			if isURL(r) {
				s.warnOnce("alpine_repo=" + r + ": network repositories need network boot (not supported yet); ignored")
				continue
			}
			s.repos = append(s.repos, e.path(r))
		}
	} else {
		for _, m := range s.media {
			s.repos = append(s.repos, m.Repos...)
		}
	}
	s.report.Repos = nil
	for _, r := range s.repos {
		s.report.Repos = append(s.report.Repos, e.rel(r))
	}
}

// singleShell gives Alpine's "single" shell before the root is built; the boot continues when
// it exits.
func singleShell(ctx context.Context, s *state) error {
	if !s.cfg.Single {
		return errSkipped
	}
	sh, argv := findShell(s.env.path(""))
	if sh == "" {
		return fmt.Errorf("single: no shell in the initramfs")
	}
	s.env.Log.Warnf("single", "starting a shell; exit it to continue the boot")
	return s.env.Actions.Spawn("", sh, argv, shellEnv)
}

// mountRoot mounts the tmpfs that becomes the root filesystem.
func mountRoot(ctx context.Context, s *state) error {
	flags, data, err := tmpfs.Options(s.cfg.RootFlags, s.cfg.RootSize)
	if err != nil {
		return fmt.Errorf("rootflags: %w", err)
	}
	root := s.env.path("sysroot")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	if err := s.env.Actions.Mount("tmpfs", root, "tmpfs", flags, data); err != nil {
		return fmt.Errorf("tmpfs root: %w", err)
	}
	s.newRoot = root
	s.note("%s", data)
	return nil
}

// readWorld returns the entries of ROOT/etc/apk/world.
func readWorld(root string) []string {
	data, err := os.ReadFile(filepath.Join(root, "etc/apk/world"))
	if err != nil {
		return nil
	}
	return strings.Fields(string(data))
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range in {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// strictError makes a best-effort phase fatal (ramboot.strict).
type strictError struct{ err error }

func (e strictError) Error() string { return e.err.Error() }
func (e strictError) Unwrap() error { return e.err }

// installWorld installs pkgs= + the overlay's world + alpine-base into the new root.
func installWorld(ctx context.Context, s *state) error {
	e := s.env
	world := append([]string(nil), s.cfg.Pkgs...)
	world = append(world, readWorld(s.newRoot)...)
	if s.defaultSvc && s.cfg.SSHKey != "" {
		world = append(world, "openssh")
	}
	world = append(world, "alpine-base")
	// A modloop signature key built into the initramfs (mkinitfs -s) goes into the new root,
	// with openssl for OpenRC's modloop verification (initramfs-init L1037-1046).
	sigs, _ := filepath.Glob(e.path("var/cache/misc/*modloop*.SIGN.RSA.*.pub"))
	for _, sig := range sigs {
		if err := copyFile(sig, filepath.Join(s.newRoot, "var/cache/misc", filepath.Base(sig)), 0o644); err != nil {
			return fmt.Errorf("modloop signature: %w", err)
		}
	}
	if len(sigs) > 0 {
		world = append(world, "openssl")
	}
	world = dedupe(world)
	s.report.World = world
	keys := filepath.Join(s.newRoot, "etc/apk/keys")
	if err := copyDir(e.path("etc/apk/keys"), keys); err != nil {
		return fmt.Errorf("apk keys: %w", err)
	}
	// The overlay's etc/apk/arch may come from another machine (Alpine overwrites it too).
	if err := writeFile(filepath.Join(s.newRoot, "etc/apk/arch"), e.Arch+"\n", 0o644); err != nil {
		return err
	}
	if e.Deps.Install == nil {
		return fmt.Errorf("no installer configured")
	}
	s.startModuleCopy()
	// Package scripts run chrooted into the new root and expect /dev, /proc and /sys there
	// (Alpine binds them around apk add too).
	var bound []string
	for _, d := range []string{"sys", "proc", "dev"} {
		dst := filepath.Join(s.newRoot, d)
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return err
		}
		if err := e.Actions.Mount(e.path(d), dst, "", MSBind, ""); err != nil {
			e.Log.Warnf("world", "bind /%s for package scripts: %v", d, err)
			continue
		}
		bound = append(bound, dst)
	}
	defer func() {
		for i := len(bound) - 1; i >= 0; i-- {
			if err := e.Actions.Unmount(bound[i], mntDetach); err != nil {
				e.Log.Warnf("world", "unmount %s: %v", e.rel(bound[i]), err)
			}
		}
	}()
	res, err := e.Deps.Install(ctx, InstallRequest{
		Root: s.newRoot, Repos: s.repos, KeysDir: keys, Arch: e.Arch, World: world,
		OverlayPaths: s.placed, KeepApkNew: s.cfg.KeepApkNew, Quiet: s.cfg.Quiet, Out: e.Log.Console(),
	})
	if res != nil {
		s.report.Installed, s.report.Dropped, s.report.Failed = res.Installed, res.Dropped, res.Failed
		s.note("%d packages installed", len(res.Installed))
		var bad []string
		for _, d := range res.Dropped {
			e.Log.Errorf("world", "not installed: %s", d)
			bad = append(bad, d)
		}
		for _, f := range res.Failed {
			e.Log.Errorf("world", "failed: %s", f)
			bad = append(bad, f)
		}
		if err == nil && len(bad) > 0 {
			err = fmt.Errorf("%d world packages not installed: %s", len(bad), strings.Join(bad, "; "))
		}
	}
	if err != nil && s.cfg.Strict {
		return strictError{fmt.Errorf("install (ramboot.strict): %w", err)}
	}
	if err != nil {
		return fmt.Errorf("install: %w", err)
	}
	return nil
}

// Alpine's default services (initramfs-init L916-951), added without an overlay or when it
// carries etc/.default_boot_services.
var defaultServices = []struct{ level, svc string }{
	{"sysinit", "devfs"}, {"sysinit", "dmesg"}, {"sysinit", "mdev"}, {"sysinit", "hwdrivers"}, {"sysinit", "modloop"},
	{"boot", "modules"}, {"boot", "sysctl"}, {"boot", "hostname"}, {"boot", "bootmisc"}, {"boot", "syslog"},
	{"default", "firstboot"},
	{"shutdown", "mount-ro"}, {"shutdown", "killprocs"}, {"shutdown", "savecache"},
}

func rcAdd(root, level, svc string) error {
	dir := filepath.Join(root, "etc/runlevels", level)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	link := filepath.Join(dir, svc)
	os.Remove(link) // ln -sf
	return os.Symlink("/etc/init.d/"+svc, link)
}

// configureRoot makes the installed root bootable the way Alpine's initramfs does.
func configureRoot(ctx context.Context, s *state) error {
	e, root := s.env, s.newRoot
	var errs []error
	errs = append(errs, s.joinColdplug())
	if s.mods != nil {
		s.report.Modules = s.mods.names() // including filesystem and hot-plug loads
	}
	if s.defaultSvc {
		for _, d := range defaultServices {
			errs = append(errs, rcAdd(root, d.level, d.svc))
		}
		if !s.hasModloop() {
			// Alpine's list is kept (overlays and tests expect it); the modules are in RAM anyway.
			s.note("no modloop image on the media: OpenRC's modloop service will report it missing")
		}
		if s.cfg.SSHKey != "" {
			errs = append(errs, rcAdd(root, "default", "sshd"))
		}
		s.note("default services")
	}
	clock := "swclock"
	if e.HasRTC() {
		clock = "hwclock"
	}
	errs = append(errs, rcAdd(root, "boot", clock))

	// apk add must work in the booted system: point it at the repositories where they will be
	// after the handover (the media mounts move to the same paths), unless the overlay has its own.
	repoFile := filepath.Join(root, "etc/apk/repositories")
	if _, err := os.Stat(repoFile); errors.Is(err, os.ErrNotExist) && len(s.repos) > 0 {
		var b strings.Builder
		for _, r := range s.repos {
			b.WriteString(e.rel(r) + "\n")
		}
		errs = append(errs, writeFile(repoFile, b.String(), 0o644))
	}
	errs = append(errs, setupInittab(root, s.cfg.Consoles))
	if fi, err := os.Stat(filepath.Join(root, "root")); err == nil && fi.IsDir() {
		errs = append(errs, os.Chmod(filepath.Join(root, "root"), 0o700))
	}
	if _, err := os.Stat(filepath.Join(root, "etc/resolv.conf")); errors.Is(err, os.ErrNotExist) {
		if data, err := os.ReadFile(e.path("etc/resolv.conf")); err == nil {
			errs = append(errs, writeFile(filepath.Join(root, "etc/resolv.conf"), string(data), 0o644))
		}
	}
	if e.SelfExe != "" {
		errs = append(errs, installAgent(e.SelfExe, root))
	}
	if s.modCopy == nil {
		s.startModuleCopy()
	}
	if s.modCopy != nil {
		errs = append(errs, <-s.modCopy)
		s.modCopy = nil
		s.note("modules copied to RAM")
	}
	return errors.Join(errs...)
}

// startModuleCopy copies the initramfs's module tree into the new root in the background (it
// runs alongside the package install): modules stay usable after the initramfs is freed and
// the media pulled. Nothing is copied if the new root already has a tree for this kernel.
func (s *state) startModuleCopy() {
	e := s.env
	if e.KernelRelease == "" || s.newRoot == "" {
		return
	}
	src := e.path("lib/modules/" + e.KernelRelease)
	dst := filepath.Join(s.newRoot, "lib/modules", e.KernelRelease)
	if _, err := os.Stat(src); err != nil {
		return
	}
	if _, err := os.Stat(dst); !errors.Is(err, os.ErrNotExist) {
		return
	}
	done := make(chan error, 1)
	s.modCopy = done
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("copying modules: panic: %v", r)
			}
		}()
		if err := copyTree(src, dst); err != nil {
			done <- fmt.Errorf("copying modules to RAM: %w", err)
			return
		}
		done <- nil
	}()
}

// setupInittab adds a getty per console= device, as Alpine's setup_inittab_console does.
func setupInittab(root string, consoles []string) error {
	inittab := filepath.Join(root, "etc/inittab")
	data, err := os.ReadFile(inittab)
	if err != nil {
		return nil // no inittab (no busybox init): nothing to add to
	}
	text := string(data)
	for _, tty := range dedupe(consoles) {
		if tty == "console" || (strings.HasPrefix(tty, "tty") && len(tty) > 3 && tty[3] >= '0' && tty[3] <= '9') {
			continue // virtual terminals have their own gettys
		}
		if !hasLinePrefix(text, tty+":") {
			if !strings.HasSuffix(text, "\n") && text != "" {
				text += "\n"
			}
			text += "# enable login on alternative console\n" + tty + "::respawn:/sbin/getty -L 0 " + tty + " vt100\n"
		}
		st := filepath.Join(root, "etc/securetty")
		if sdata, err := os.ReadFile(st); err == nil && !hasLinePrefix(string(sdata), tty) {
			if err := appendFile(st, tty+"\n"); err != nil {
				return err
			}
		}
	}
	if text != string(data) {
		return writeFile(inittab, text, 0o644)
	}
	return nil
}

func hasLinePrefix(text, prefix string) bool {
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

// installAgent copies the running binary to /usr/local/sbin/ramboot with an lbu link, so the
// booted system has ramboot's lbu.
func installAgent(self, root string) error {
	dst := filepath.Join(root, "usr/local/sbin/ramboot")
	if err := copyFile(self, dst, 0o755); err != nil {
		return fmt.Errorf("install agent: %w", err)
	}
	link := filepath.Join(root, "usr/local/sbin/lbu")
	os.Remove(link)
	if err := os.Symlink("ramboot", link); err != nil {
		return fmt.Errorf("install agent: %w", err)
	}
	return nil
}

// releaseMedia unmounts what the running system does not need. By default the media with a
// repository or an apkovl stay mounted read-only (Alpine compatible: lbu commit and apk add use
// them) but nothing depends on them, so pulling the stick is safe; ramboot.media=unmount unmounts.
func releaseMedia(ctx context.Context, s *state) error {
	var errs []error
	if s.ovlMount != "" {
		// apkovl=dev:path mounted the device only for the overlay, as Alpine does.
		if err := s.env.Actions.Unmount(s.ovlMount, 0); err != nil {
			errs = append(errs, fmt.Errorf("unmount %s: %w", s.env.rel(s.ovlMount), err))
		}
	}
	kept := s.media[:0:0]
	for _, m := range s.media {
		if s.cfg.UnmountMedia {
			if err := s.env.Actions.Unmount(m.Mountpoint, 0); err != nil {
				errs = append(errs, fmt.Errorf("unmount %s: %w", m.Device, err))
				kept = append(kept, m)
				continue
			}
			s.note("unmounted %s", s.env.rel(m.Mountpoint))
			continue
		}
		kept = append(kept, m)
		s.note("kept %s read-only", s.env.rel(m.Mountpoint))
	}
	s.media = kept
	sort.Slice(s.media, func(i, j int) bool { return s.media[i].Mountpoint < s.media[j].Mountpoint })
	return errors.Join(errs...)
}

// hasModloop reports whether a kept medium carries an Alpine modloop image (boot/modloop-*), which
// OpenRC's modloop service would mount.
func (s *state) hasModloop() bool {
	for _, m := range s.media {
		if l, _ := filepath.Glob(filepath.Join(m.Mountpoint, "boot", "modloop-*")); len(l) > 0 {
			return true
		}
	}
	return false
}

func (s *state) warnOnce(msg string) {
	for _, w := range s.report.Warnings {
		if w == msg {
			return
		}
	}
	s.report.Warnings = append(s.report.Warnings, msg)
	s.env.Log.Warnf("", "%s", msg)
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
