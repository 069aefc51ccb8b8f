package boot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ramboot/ramboot/internal/tmpfs"
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

// apkovlPath resolves apkovl= to a file path in the initramfs: "dev:relpath" and
// "dev:fstype:relpath" mount the device read-only at /media/<dev> (unless a medium is already
// there); anything else is a path. URLs need network boot.
func (s *state) apkovlPath(v string) (string, error) {
	e := s.env
	if isURL(v) {
		uuid, _ := os.ReadFile(e.path("sys/class/dmi/id/product_uuid"))
		url := ExpandApkovlURL(v, firstMAC(e.path("sys")), strings.TrimSpace(string(uuid)))
		return "", fmt.Errorf("apkovl=%s: fetching an overlay needs network boot (not supported yet)", url)
	}
	parts := strings.Split(v, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return e.path(v), nil
	}
	dev, rel, fstype := parts[0], parts[len(parts)-1], ""
	if len(parts) == 3 {
		fstype = parts[1]
	}
	name := filepath.Base(dev)
	for _, m := range s.media {
		if filepath.Base(m.Device) == name {
			return filepath.Join(m.Mountpoint, rel), nil
		}
	}
	mnt := e.path("media/" + name)
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		return "", err
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
	if err := e.Actions.Mount(e.path(src), mnt, fstype, MSRdonly, ""); err != nil {
		return "", fmt.Errorf("apkovl=%s: %w", v, err)
	}
	s.ovlMount = mnt
	return filepath.Join(mnt, rel), nil
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
		c := e.Deps.ChooseOverlay(s.media)
		rep.Log = c.Log
		for _, l := range c.Log {
			e.Log.Debugf("overlay", "%s", l)
		}
		if c.Path != "" {
			path, rep.Source = c.Path, "media"
		}
	}
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
	placed, refused, err := e.Deps.RestoreOverlay(path, s.newRoot)
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
