package boot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ramboot/ramboot/internal/tmpfs"
	"github.com/ramboot/ramboot/overlay"
)

// ExpandApkovlURL substitutes Alpine's {MAC} and {UUID} placeholders in an apkovl URL.
func ExpandApkovlURL(url, mac, uuid string) string {
	return strings.NewReplacer("{MAC}", mac, "{UUID}", uuid).Replace(url)
}

// firstMAC returns the address of the first non-loopback interface (sorted by name), as the
// MAC used for {MAC}.
func firstMAC(sysRoot string) string {
	ifs, _ := filepath.Glob(filepath.Join(sysRoot, "class/net/*/address"))
	for _, p := range ifs {
		if filepath.Base(filepath.Dir(p)) == "lo" {
			continue
		}
		if b, err := os.ReadFile(p); err == nil {
			return strings.TrimSpace(string(b))
		}
	}
	return ""
}

// apkovlPath resolves apkovl= to a file path in the initramfs (see mediaFile); the device it
// mounted for it is unmounted after the install, as Alpine does. URLs need network boot.
func (s *state) apkovlPath(v string) (string, error) {
	e := s.env
	if isURL(v) {
		uuid, _ := os.ReadFile(e.path("sys/class/dmi/id/product_uuid"))
		url := ExpandApkovlURL(v, firstMAC(e.path("sys")), strings.TrimSpace(string(uuid)))
		return "", fmt.Errorf("apkovl=%s: fetching an overlay needs network boot (not supported yet)", url)
	}
	p, mnt, err := s.mediaFile("apkovl", v)
	if mnt != "" {
		s.ovlMount = mnt
	}
	return p, err
}

// mediaFile resolves a file named on the command line (param=v): "dev:relpath" and
// "dev:fstype:relpath" are on a device, mounted read-only at /media/<dev> unless a medium or an
// earlier such mount is already there; anything else is a path in the initramfs. mnt is the
// directory this call mounted ("" = none), for the caller to unmount.
func (s *state) mediaFile(param, v string) (path, mnt string, err error) {
	e := s.env
	parts := strings.Split(v, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return e.path(v), "", nil
	}
	dev, rel, fstype := parts[0], parts[len(parts)-1], ""
	if len(parts) == 3 {
		fstype = parts[1]
	}
	name := filepath.Base(dev)
	for _, m := range s.media {
		if filepath.Base(m.Device) == name {
			return filepath.Join(m.Mountpoint, rel), "", nil
		}
	}
	dir := e.path("media/" + name)
	if dir == s.ovlMount || dir == s.keyMount {
		return filepath.Join(dir, rel), "", nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	src := dev
	if !strings.HasPrefix(src, "/") {
		src = "/dev/" + src
	}
	if s.loader != nil && fstype != "" {
		if err := s.loader.LoadFS(fstype); err != nil {
			e.Log.Warnf("overlay", "%v", err)
		}
	}
	if err := e.Actions.Mount(e.path(src), dir, fstype, MSRdonly, ""); err != nil {
		return "", "", fmt.Errorf("%s=%s: %w", param, v, err)
	}
	return filepath.Join(dir, rel), dir, nil
}

// overlayOptions returns the restore options for path. The key file (apkovl_key=) is looked up
// only for an encrypted apkovl, once; if it cannot be found the console prompt is the only way.
func (s *state) overlayOptions(path string, rep *OverlayReport) OverlayOptions {
	o := OverlayOptions{PromptTimeout: s.cfg.PromptTimeout}
	if s.cfg.ApkovlKey == "" || overlay.CipherOf(path) == "" {
		return o
	}
	if !s.keyResolved {
		s.keyResolved = true
		p, mnt, err := s.mediaFile("apkovl_key", s.cfg.ApkovlKey)
		s.keyMount = mnt
		if err == nil {
			_, err = os.Stat(p)
		}
		if err != nil {
			msg := fmt.Sprintf("apkovl_key=%s: %v", s.cfg.ApkovlKey, err)
			s.env.Log.Warnf("overlay", "%s", msg)
			rep.Log = append(rep.Log, msg)
		} else {
			s.keyFile = p
			rep.KeyFile = s.env.rel(p)
		}
	}
	o.KeyFile = s.keyFile
	return o
}

// clearDir removes everything inside dir (a failed overlay's partial extraction).
func clearDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, en := range ents {
		errs = append(errs, os.RemoveAll(filepath.Join(dir, en.Name())))
	}
	return errors.Join(errs...)
}

// hostname is the machine's name if the kernel knows one before the overlay sets it: the
// hostname field of ip= (client:server:gw:netmask:HOSTNAME:…), else the kernel's own unless it
// is a placeholder. Alpine's initramfs has none and ignores ip='s; usually this is "".
func (s *state) hostname() string {
	if f := strings.Split(s.cfg.IP, ":"); len(f) >= 5 && f[4] != "" {
		return f[4]
	}
	b, _ := os.ReadFile(s.env.path("proc/sys/kernel/hostname"))
	switch h := strings.TrimSpace(string(b)); h {
	case "", "(none)", "localhost":
		return ""
	default:
		return h
	}
}

// ovlHost is the host part of NAME.apkovl.tar.gz[.cipher].
func ovlHost(path string) string {
	b := filepath.Base(path)
	if i := strings.Index(b, ".apkovl.tar.gz"); i >= 0 {
		return b[:i]
	}
	return b
}

// restoreOverlay restores the chosen apkovl; a broken one falls back to the newest lbu backup
// on its medium, then to none, saying so.
func restoreOverlay(ctx context.Context, s *state) error {
	e := s.env
	rep := &OverlayReport{Source: "none"}
	s.report.Overlay = rep
	if s.cfg.NoApkovl {
		s.defaultSvc = true
		s.note("noapkovl")
		return errSkipped
	}
	var path string
	var errs []error
	switch {
	case s.cfg.Apkovl != "":
		p, err := s.apkovlPath(s.cfg.Apkovl)
		if err != nil {
			errs = append(errs, err)
			rep.Fallback = append(rep.Fallback, err.Error())
		} else if _, err := os.Stat(p); err != nil {
			errs = append(errs, fmt.Errorf("apkovl=%s: %w", s.cfg.Apkovl, err))
			rep.Fallback = append(rep.Fallback, err.Error())
		} else {
			path, rep.Source = p, "cmdline"
		}
	case e.Deps.ChooseOverlay != nil:
		host := s.hostname()
		if host != "" {
			rep.Log = append(rep.Log, "hostname "+host+" (an apkovl named after it is preferred)")
		}
		c := e.Deps.ChooseOverlay(s.media, host)
		// Leftovers (an interrupted lbu commit's .lbu-*.tmp, a stale .new, which Alpine would try
		// to decrypt and fail on) are never used; say so, the user may think it is their config.
		for _, l := range c.Ignored {
			e.Log.Warnf("overlay", "%s", e.rel(l))
			rep.Log = append(rep.Log, e.rel(l))
		}
		rep.Log = append(rep.Log, c.Log...)
		for _, l := range c.Log {
			e.Log.Debugf("overlay", "%s", l)
		}
		if c.Path != "" {
			path, rep.Source = c.Path, "media"
		}
	}
	defer func() {
		// A device mounted only to read the key (apkovl_key=dev:path): the restore is done with it.
		if s.keyMount != "" {
			if err := e.Actions.Unmount(s.keyMount, 0); err != nil {
				e.Log.Warnf("overlay", "unmount %s: %v", e.rel(s.keyMount), err)
			}
			s.keyMount = ""
		}
	}()
	if path != "" {
		err := s.restoreOne(path, rep)
		if err != nil && e.Deps.Backups != nil {
			errs = append(errs, err)
			rep.Fallback = append(rep.Fallback, err.Error())
			path = ""
			backups, berr := e.Deps.Backups(filepath.Dir(s.lastTried), ovlHost(s.lastTried))
			if berr != nil {
				errs = append(errs, fmt.Errorf("lbu backups: %w", berr))
			}
			if len(backups) > 0 {
				e.Log.Warnf("overlay", "falling back to the newest backup %s", e.rel(backups[0]))
				if err := s.restoreOne(backups[0], rep); err != nil {
					errs = append(errs, err)
					rep.Fallback = append(rep.Fallback, err.Error())
				} else {
					path, rep.Source = backups[0], "backup"
				}
			}
		} else if err != nil {
			errs = append(errs, err)
			path = ""
		}
		if path == "" {
			e.Log.Warnf("overlay", "booting without an overlay")
			rep.Source = "none"
		}
	}
	if path == "" {
		s.defaultSvc = true
		s.note("no apkovl")
		return errors.Join(errs...)
	}
	rep.Path = e.rel(path)
	s.overlay = path
	marker := filepath.Join(s.newRoot, "etc/.default_boot_services")
	if _, err := os.Lstat(marker); err == nil {
		s.defaultSvc = true
		os.Remove(marker)
	}
	if fi, err := os.Stat(filepath.Join(s.newRoot, "root")); err == nil && fi.IsDir() {
		os.Chmod(filepath.Join(s.newRoot, "root"), 0o700)
	}
	s.note("%s (%d files)", rep.Path, len(s.placed))
	if err := s.relocateMedia(); err != nil {
		errs = append(errs, err)
	}
	// The overlay's fstab may size the root (a tmpfs "/" line), before packages fill it.
	opts, ok, err := tmpfs.FromFstab(filepath.Join(s.newRoot, "etc/fstab"))
	if err != nil {
		errs = append(errs, err)
	} else if ok {
		flags, data, err := tmpfs.Options(opts, "")
		if err == nil {
			err = e.Actions.Mount("tmpfs", s.newRoot, "tmpfs", flags|MSRemount, data)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("resize root from etc/fstab (%s): %w", opts, err))
		} else {
			s.note("root remounted %s", data)
		}
	}
	return errors.Join(errs...)
}

func (s *state) restoreOne(path string, rep *OverlayReport) error {
	e := s.env
	s.lastTried = path
	if e.Deps.RestoreOverlay == nil {
		return fmt.Errorf("no overlay restore configured")
	}
	placed, refused, err := e.Deps.RestoreOverlay(path, s.newRoot, s.overlayOptions(path, rep))
	if err != nil {
		if cerr := clearDir(s.newRoot); cerr != nil {
			err = errors.Join(err, fmt.Errorf("clearing the partial restore: %w", cerr))
		}
		if !strings.Contains(err.Error(), path) {
			err = fmt.Errorf("apkovl %s: %w", e.rel(path), err)
		}
		return err
	}
	s.placed = placed
	rep.Placed, rep.Refused = len(placed), refused
	for _, r := range refused {
		e.Log.Warnf("overlay", "refused %s", r)
	}
	return nil
}
