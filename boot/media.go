package boot

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
)

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
		Deadline: s.cfg.MediaWait, Grace: s.cfg.USBDelay, Prefer: s.cfg.Prefer,
		Mounter: e.Actions, Loader: s.loader, PrepareFS: s.prepareFS, Rescan: s.rescan,
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
		// The boot stops here and its report is out of reach: the media log goes to the
		// console even with quiet, so the user sees what each device was and why it did not do.
		if res != nil {
			for _, line := range res.Log {
				e.Log.Errorf("media", "%s", line)
			}
		}
		return fmt.Errorf("no boot repository found within %s (no medium with a top-level directory holding .boot_repository; see the media log)", s.cfg.MediaWait)
	}
	s.startPreload(ctx)
	// The media are found: module loads still running (virtio_pci probing the functions after
	// the disk's, slow controllers) go behind the install, until configure waits for them.
	if s.mods != nil {
		s.mods.background(true)
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
