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
	"golang.org/x/sys/unix"
)

// DefaultDeps wires the real ramboot packages: internal/kmod, internal/coldplug (via the plan),
// internal/bootmedia with a netlink uevent listener, overlay and internal/apkinstall. console is
// where password prompts go; they are read from stdin (the console) when it is a terminal.
func DefaultDeps(console io.Writer, arch string) Deps {
	return Deps{
		LoadIndex:      func(dir string) (coldplug.Index, error) { return kmod.Load(dir) },
		Media:          findMediaReal,
		ChooseOverlay:  chooseOverlay,
		RestoreOverlay: restoreOverlayWith(os.Stdin, console, arch),
		Backups:        overlay.Backups,
		Install:        InstallApk,
		Preload:        PreloadApk,
	}
}

// chooseOverlay scans the media for apkovls (overlay.Scan: leftovers such as lbu's temporary
// files or a stale .new are listed with the reason, never chosen) and picks one deterministically.
func chooseOverlay(media []Medium, hostname string) OverlayChoice {
	var ch OverlayChoice
	var cands []overlay.Candidate
	// An overlay on a preferred medium (ramboot.prefer=) beats those elsewhere.
	var preferred []Medium
	for _, m := range media {
		if m.Preferred && len(m.Apkovls) > 0 {
			preferred = append(preferred, m)
		}
	}
	if len(preferred) > 0 {
		ch.Log = append(ch.Log, "overlays on preferred media only (ramboot.prefer=)")
	}
	for _, m := range media {
		c, ignored, err := overlay.Scan(m.Mountpoint)
		if err != nil {
			ch.Log = append(ch.Log, fmt.Sprintf("%s: %v", m.Mountpoint, err))
		}
		// Leftovers are reported from every medium, preferred or not.
		ch.Ignored = append(ch.Ignored, ignored...)
		if len(preferred) == 0 || m.Preferred && len(m.Apkovls) > 0 {
			cands = append(cands, c...)
		}
	}
	best, clog := overlay.Choose(cands, hostname)
	ch.Log = append(ch.Log, clog...)
	if best != nil {
		ch.Path = best.Path
	}
	return ch
}

// restoreOverlayWith restores apkovls with overlay.Restore, asking for a password on in/out when
// an encrypted one cannot be opened with the key file.
func restoreOverlayWith(in *os.File, out io.Writer, arch string) func(path, root string, o OverlayOptions) ([]string, []string, error) {
	return func(path, root string, o OverlayOptions) ([]string, []string, error) {
		res, err := overlay.Restore(path, root, overlay.RestoreOptions{
			KeyFile:  o.KeyFile,
			Password: consolePassword(in, out, o.PromptTimeout),
			Arch:     arch,
		})
		if err != nil {
			return nil, nil, err
		}
		return res.Placed, res.Refused, nil
	}
}

// consolePassword is the console password prompt, or nil (no prompt at all) when timeout is 0 or
// in is not an interactive terminal: a headless machine (no console, /dev/null, a pipe) must not
// wait for a password nobody can type.
func consolePassword(in *os.File, out io.Writer, timeout time.Duration) func(string) ([]byte, error) {
	if in == nil || out == nil || timeout <= 0 || !isTerminal(in) {
		return nil
	}
	return overlay.ConsolePrompt(in, out, timeout)
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// InstallApk installs the world with internal/apkinstall in diskless mode (Alpine's
// --initramfs-diskless-boot: unsatisfiable entries dropped and named, per-package failures do not
// stop the others, overlay files win).
func InstallApk(ctx context.Context, req InstallRequest) (*InstallResult, error) {
	res, err := apkinstall.Add(ctx, apkOptions(req), req.World)
	if res == nil {
		return nil, err
	}
	t := res.Timings
	out := &InstallResult{Installed: res.Installed, Dropped: res.Dropped, Preloaded: res.Preloaded, TimingsMS: map[string]float64{
		"indexes": ms(t.Indexes), "solve": ms(t.Solve), "commit": ms(t.Commit), "scripts": ms(t.Scripts),
		"triggers": ms(t.Triggers), "database": ms(t.Database), "total": ms(t.Total),
	}}
	for _, f := range res.Failed {
		out.Failed = append(out.Failed, f.Error())
	}
	return out, err
}

// PreloadApk loads, verifies and parses the repositories' indexes (apkinstall.LoadRepos) for
// InstallApk, which uses them only if its repositories, keys and architecture are still the same.
func PreloadApk(ctx context.Context, req InstallRequest) (any, error) {
	o := apkinstall.RepoOptions{KeysDir: req.KeysDir, Arch: req.Arch}
	for _, r := range req.Repos {
		o.Repos = append(o.Repos, apkinstall.Repo{Path: r})
	}
	rs, err := apkinstall.LoadRepos(ctx, o)
	if err != nil {
		return nil, err
	}
	return rs, nil
}

// apkOptions maps the boot's install request to apkinstall options. Like Alpine's initramfs,
// the install runs with --clean-protected unless keep_apk_new: a package's copy of a protected
// file that exists in the root (e.g. etc/apk/keys/* copied from the initramfs) is dropped
// instead of left as FILE.apk-new. Overlay files are never replaced either way.
func apkOptions(req InstallRequest) apkinstall.Options {
	opts := apkinstall.Options{
		Root: req.Root, KeysDir: req.KeysDir, Arch: req.Arch, InitDB: true, Quiet: req.Quiet,
		Progress: !req.Quiet, OverlayPaths: req.OverlayPaths, Diskless: true, Out: req.Out,
		CleanProtected: !req.KeepApkNew, MemoryBudget: req.MemoryBudget,
	}
	if rs, ok := req.Preloaded.(*apkinstall.Repos); ok {
		opts.Preloaded = rs
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
