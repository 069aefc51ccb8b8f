package boot

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// fstabEntry is one line of an fstab.
type fstabEntry struct{ spec, dir, fstype, opts string }

func readFstab(path string) ([]fstabEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []fstabEntry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) < 2 || strings.HasPrefix(fl[0], "#") {
			continue
		}
		e := fstabEntry{spec: fl[0], dir: filepath.Clean(fl[1])}
		if len(fl) > 2 {
			e.fstype = fl[2]
		}
		if len(fl) > 3 {
			e.opts = fl[3]
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

// matches reports whether an fstab device spec names medium m. Besides /dev/NAME, UUID= and
// LABEL=, it understands the aliases mdev creates on Alpine (/dev/usbdisk for a USB disk,
// /dev/cdrom for an optical drive), which do not exist in our devtmpfs.
func (s *state) matches(spec string, m Medium) bool {
	name := filepath.Base(m.Device)
	switch {
	case spec == m.Device || spec == "/dev/"+name:
		return true
	case strings.HasPrefix(spec, "UUID="):
		return m.UUID != "" && strings.EqualFold(strings.Trim(spec[5:], `"`), m.UUID)
	case strings.HasPrefix(spec, "LABEL="):
		return m.Label != "" && strings.Trim(spec[6:], `"`) == m.Label
	case spec == "/dev/cdrom":
		return strings.HasPrefix(name, "sr")
	case spec == "/dev/usbdisk":
		link, err := filepath.EvalSymlinks(s.env.path("sys/class/block/" + name))
		return err == nil && strings.Contains(link, "/usb")
	}
	return false
}

// relocateMedia moves boot media to the mount points the overlay's etc/fstab gives them (e.g.
// /media/usb), as Alpine's initramfs does before installing: repository paths and the
// etc/apk/cache link in the overlay were written for those paths when lbu commit ran.
func (s *state) relocateMedia() error {
	entries, err := readFstab(filepath.Join(s.newRoot, "etc/fstab"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("etc/fstab: %w", err)
	}
	e := s.env
	var errs []error
	for i := range s.media {
		m := &s.media[i]
		for _, fe := range entries {
			if fe.dir == "/" || !strings.HasPrefix(fe.dir, "/media/") || !s.matches(fe.spec, *m) {
				continue
			}
			dst := e.path(fe.dir)
			if dst == m.Mountpoint {
				break
			}
			if err := os.MkdirAll(dst, 0o755); err != nil {
				errs = append(errs, err)
				break
			}
			if err := e.Actions.Mount(m.Mountpoint, dst, "", MSMove, ""); err != nil {
				errs = append(errs, fmt.Errorf("move %s to %s (etc/fstab): %w", e.rel(m.Mountpoint), fe.dir, err))
				break
			}
			s.note("%s moved to %s (etc/fstab)", e.rel(m.Mountpoint), fe.dir)
			old := m.Mountpoint
			re := func(p string) string { return dst + strings.TrimPrefix(p, old) }
			m.Mountpoint = dst
			for j := range m.Repos {
				m.Repos[j] = re(m.Repos[j])
			}
			for j := range m.Apkovls {
				m.Apkovls[j] = re(m.Apkovls[j])
			}
			if strings.HasPrefix(s.overlay, old+"/") {
				s.overlay = re(s.overlay)
			}
			os.Remove(old) // the now empty mount point
			break
		}
	}
	s.report.Media = s.media
	s.findRepos()
	return errors.Join(errs...)
}
