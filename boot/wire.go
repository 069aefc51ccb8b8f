package boot

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/ramboot/ramboot/internal/apkinstall"
	"github.com/ramboot/ramboot/internal/bootmedia"
	"github.com/ramboot/ramboot/internal/coldplug"
	"github.com/ramboot/ramboot/internal/kmod"
	"github.com/ramboot/ramboot/internal/uevent"
	"github.com/ramboot/ramboot/overlay"
)

// passwordTimeout bounds the console password prompt of an encrypted apkovl, so an unattended
// machine boots on (falling back) instead of waiting for a password nobody types.
const passwordTimeout = 60 * time.Second

// DefaultDeps wires the real ramboot packages: internal/kmod, internal/coldplug (via the plan),
// internal/bootmedia with a netlink uevent listener, overlay and internal/apkinstall. console is
// where password prompts go.
func DefaultDeps(console io.Writer, arch string) Deps {
	return Deps{
		LoadIndex: func(dir string) (coldplug.Index, error) { return kmod.Load(dir) },
		Media:     findMediaReal,
		ChooseOverlay: func(media []Medium) OverlayChoice {
			var cands []overlay.Candidate
			var log []string
			// An overlay on a preferred medium (ramboot.prefer=) beats those elsewhere.
			var preferred []Medium
			for _, m := range media {
				if m.Preferred && len(m.Apkovls) > 0 {
					preferred = append(preferred, m)
				}
			}
			if len(preferred) > 0 {
				log = append(log, "overlays on preferred media only (ramboot.prefer=)")
				media = preferred
			}
			for _, m := range media {
				c, err := overlay.FindCandidates(m.Mountpoint)
				if err != nil {
					log = append(log, fmt.Sprintf("%s: %v", m.Mountpoint, err))
				}
				cands = append(cands, c...)
			}
			best, clog := overlay.Choose(cands, "")
			log = append(log, clog...)
			if best == nil {
				return OverlayChoice{Log: log}
			}
			return OverlayChoice{Path: best.Path, Log: log}
		},
		RestoreOverlay: func(path, root string) ([]string, []string, error) {
			res, err := overlay.Restore(path, root, overlay.RestoreOptions{
				Password: overlay.ConsolePrompt(os.Stdin, console, passwordTimeout),
				Arch:     arch,
			})
			if err != nil {
				return nil, nil, err
			}
			return res.Placed, res.Refused, nil
		},
		Backups: overlay.Backups,
		Install: InstallApk,
	}
}

// InstallApk installs the world with internal/apkinstall in diskless mode (Alpine's
// --initramfs-diskless-boot: unsatisfiable entries dropped and named, per-package failures do not
// stop the others, overlay files win).
func InstallApk(ctx context.Context, req InstallRequest) (*InstallResult, error) {
	res, err := apkinstall.Add(ctx, apkOptions(req), req.World)
	if res == nil {
		return nil, err
	}
	out := &InstallResult{Installed: res.Installed, Dropped: res.Dropped}
	for _, f := range res.Failed {
		out.Failed = append(out.Failed, f.Error())
	}
	return out, err
}

// apkOptions maps the boot's install request to apkinstall options. Like Alpine's initramfs,
// the install runs with --clean-protected unless keep_apk_new: a package's copy of a protected
// file that exists in the root (e.g. etc/apk/keys/* copied from the initramfs) is dropped
// instead of left as FILE.apk-new. Overlay files are never replaced either way.
func apkOptions(req InstallRequest) apkinstall.Options {
	opts := apkinstall.Options{
		Root: req.Root, KeysDir: req.KeysDir, Arch: req.Arch, InitDB: true, Quiet: req.Quiet,
		Progress: true, OverlayPaths: req.OverlayPaths, Diskless: true, Out: req.Out,
		CleanProtected: !req.KeepApkNew,
	}
	for _, r := range req.Repos {
		opts.Repos = append(opts.Repos, apkinstall.Repo{Path: r})
	}
	return opts
}

// findMediaReal runs bootmedia.Find with hot-plug events from the kernel.
func findMediaReal(ctx context.Context, req MediaRequest) (*MediaResult, error) {
	opts := mediaOptions(req)
	if l, err := uevent.Listen(uevent.Config{}); err == nil {
		defer l.Close()
		opts.Events = l
	} else if req.Log != nil {
		req.Log("no uevent listener (%v): polling sysfs", err)
	}
	res, err := bootmedia.Find(ctx, opts)
	if err != nil {
		return nil, err
	}
	return convertMedia(res), nil
}

// mediaOptions maps a MediaRequest to bootmedia.Options (all but the event source). With a
// module loader, Rescan is always set: Find runs it once the listener is open, so a device that
// appeared after the coldplug walk but before the listener still gets its driver.
func mediaOptions(req MediaRequest) bootmedia.Options {
	opts := bootmedia.Options{
		SysRoot: req.Root, DevRoot: req.DevRoot, MediaRoot: req.MediaRoot, Mounter: req.Mounter,
		Timeout: req.Deadline, USBDelay: req.Grace, Prefer: req.Prefer, Log: req.Log,
	}
	if req.Loader != nil {
		opts.OnEvent = func(ev uevent.Event) { req.Loader.HandleEvent(ev) }
		opts.PrepareFS = req.Loader.LoadFS
		opts.Rescan = func() { req.Loader.Coldplug() }
	}
	if req.PrepareFS != nil {
		opts.PrepareFS = req.PrepareFS
	}
	if req.Rescan != nil {
		opts.Rescan = req.Rescan
	}
	return opts
}

func convertMedia(res *bootmedia.Result) *MediaResult {
	out := &MediaResult{Why: fmt.Sprintf("%s after %v", res.Why, res.Elapsed.Round(time.Millisecond)), Log: res.Log}
	for _, m := range res.Kept() {
		out.Media = append(out.Media, Medium{
			Device: filepath.Join("/dev", m.Dev), FSType: m.Info.Type, Label: m.Info.Label, UUID: m.Info.UUID,
			Mountpoint: m.MountPoint, Repos: m.Repos, Apkovls: m.Overlays, Preferred: m.Preferred,
		})
	}
	return out
}
