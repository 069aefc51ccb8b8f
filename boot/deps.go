package boot

import (
	"context"
	"io"
	"time"

	"github.com/ramboot/ramboot/internal/bootmedia"
	"github.com/ramboot/ramboot/internal/coldplug"
)

// The boot plan calls the other ramboot packages through these small function types, so it can be
// tested with fakes and does not depend on their internals; cmd/init wires the real ones
// (internal/kmod, internal/coldplug, internal/bootmedia, overlay, internal/apkinstall).

// Medium is one mounted boot medium that matters (a repository or an apkovl on it).
type Medium struct {
	Device     string   `json:"device"`
	FSType     string   `json:"fstype,omitempty"`
	Label      string   `json:"label,omitempty"`
	UUID       string   `json:"uuid,omitempty"`
	Mountpoint string   `json:"mountpoint"`          // absolute path in the initramfs (under Env.Root)
	Repos      []string `json:"repos,omitempty"`     // top-level dirs holding .boot_repository (absolute)
	Apkovls    []string `json:"apkovls,omitempty"`   // top-level *.apkovl.tar.gz[.cipher] (absolute)
	Preferred  bool     `json:"preferred,omitempty"` // matched a ramboot.prefer= hint
}

// MediaRequest is what the media phase asks of discovery.
type MediaRequest struct {
	Root, DevRoot, MediaRoot string        // Root holds sys/ (sysfs)
	Deadline                 time.Duration // overall bound when nothing is found
	Grace                    time.Duration // usbdelay: extra wait for more media after a repository is found
	Prefer                   []string      // hints (LABEL=, UUID=, device name) for media to put first
	Mounter                  bootmedia.Mounter
	// Loader loads modules for hot-plugged devices and filesystems (nil = no module index).
	Loader *coldplug.Loader
	// PrepareFS loads what mounting a filesystem type needs (nil = Loader.LoadFS).
	PrepareFS func(fstype string) error
	// Rescan walks sysfs again for modules (nil = Loader.Coldplug). Discovery runs it once its
	// uevent listener is open: a device that appeared between the coldplug walk and the
	// listener would otherwise never get its driver.
	Rescan func()
	Log    func(format string, args ...any)
}

// MediaResult lists the media kept mounted and why every candidate was or was not chosen.
type MediaResult struct {
	Media []Medium
	Why   string // why the wait ended ("repository and apkovl found", "deadline 5s reached")
	Log   []string
}

// OverlayChoice is the chosen apkovl and the explanation for every candidate.
type OverlayChoice struct {
	Path    string
	Log     []string
	Ignored []string // "path: ignored: why" for leftovers that look like apkovls (lbu temp files, .new)
}

// OverlayOptions are the boot's inputs to restoring an apkovl.
type OverlayOptions struct {
	KeyFile       string        // password file of an encrypted apkovl (apkovl_key=), "" = none
	PromptTimeout time.Duration // bound of the console password prompt; 0 = never prompt
}

// InstallRequest is the world install into the new root (internal/apkinstall.Add, diskless mode).
type InstallRequest struct {
	Root         string
	Repos        []string // repository dirs (absolute)
	KeysDir      string
	Arch         string
	World        []string
	OverlayPaths []string // root-relative paths placed by the overlay: never overwritten
	KeepApkNew   bool
	Quiet        bool
	Out          io.Writer
	// Preloaded is what Deps.Preload returned for these repositories (nil = nothing): the
	// installer uses it only where it matches its own request.
	Preloaded any
	// MemoryBudget bounds the decoded packages held ahead of the writer (0 = the installer's
	// default); see installBudget.
	MemoryBudget int64
}

// InstallResult is what the install did; every dropped or failed package is named.
type InstallResult struct {
	Installed []string
	Dropped   []string
	Failed    []string
	Preloaded int // repositories whose index came from the preload
	// TimingsMS splits the install's wall time (indexes, solve, commit, scripts, triggers,
	// database, total) for the boot report.
	TimingsMS map[string]float64
}

// Deps are the other packages the plan uses. A nil entry disables that step with a note.
type Deps struct {
	LoadIndex func(modulesDir string) (coldplug.Index, error)
	Media     func(ctx context.Context, req MediaRequest) (*MediaResult, error)
	// ChooseOverlay picks among the media's apkovls deterministically; one named after hostname
	// (if not "") wins.
	ChooseOverlay func(media []Medium, hostname string) OverlayChoice
	// RestoreOverlay unpacks an apkovl into root and returns the root-relative paths placed.
	RestoreOverlay func(path, root string, opts OverlayOptions) (placed, refused []string, err error)
	// Backups lists lbu backups for the overlay's host on its medium, newest first.
	Backups func(mediaDir, host string) ([]string, error)
	Install func(ctx context.Context, req InstallRequest) (*InstallResult, error)
	// Preload starts what Install will need once the repositories are known (their verified,
	// parsed indexes) while the root is built and the overlay restored; the result reaches
	// Install as InstallRequest.Preloaded. Only Repos, KeysDir and Arch are set. A failed
	// preload is no error of the boot: Install then loads, and reports, as without one.
	Preload func(ctx context.Context, req InstallRequest) (any, error)
}
