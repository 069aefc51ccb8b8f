package boot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

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
	defer s.joinPreload() // joined on every way out, so nothing runs on past the phase
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
		Preloaded: s.joinPreload(), MemoryBudget: installBudget(e.path("proc/meminfo")),
	})
	if res != nil {
		s.report.Installed, s.report.Dropped, s.report.Failed = res.Installed, res.Dropped, res.Failed
		s.report.InstallMS = res.TimingsMS
		s.report.PreloadedRepos = res.Preloaded
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

// installBudget sizes the installer's decode-ahead memory from the RAM available at boot: an
// eighth of MemAvailable, between 10 MiB (the installer's default, fine on a 128 MiB box) and
// 64 MiB. With more, the decoders keep working while a pre-install script holds the writer
// (chrony's adds a user: ~140 ms under emulation) instead of stopping at 10 MiB ahead.
func installBudget(meminfo string) int64 {
	data, err := os.ReadFile(meminfo)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "MemAvailable:" {
			kib, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return 0
			}
			return min(max(kib*1024/8, 10<<20), 64<<20)
		}
	}
	return 0
}
