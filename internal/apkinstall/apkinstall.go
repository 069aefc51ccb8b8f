// Package apkinstall installs a world from Alpine repositories into a root, in-process: it is
// what `apk add --root R [--initdb] ...` does, and what PID 1 calls instead of running apk.
//
// Pipeline: load and verify the indexes, solve (internal/apkinstall/solver), then decode and
// verify packages in parallel (internal/apkinstall/pkgstream: index C: → control member →
// datahash → per-file SHA-1) under a memory budget, while a single writer extracts them strictly
// in install order, runs their scripts, and finally runs triggers and writes the database.
package apkinstall

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ramboot/ramboot/internal/apkarch"
	"github.com/ramboot/ramboot/internal/apkinstall/db"
	"github.com/ramboot/ramboot/internal/apkinstall/pkg"
	"github.com/ramboot/ramboot/internal/apkinstall/solver"
)

// Repo is one repository: a directory holding ARCH/APKINDEX.tar.gz (packages beside the index),
// or the path of an index .tar.gz itself.
type Repo struct{ Tag, Path string }

// Options configure Add. See the package documentation of cmd/ramboot apk for the flags.
type Options struct {
	Root  string
	Repos []Repo // explicit; Add also reads ROOT/etc/apk/repositories (local paths only)
	// RepositoriesFile replaces ROOT/etc/apk/repositories when set (apk --repositories-file).
	RepositoriesFile string
	KeysDir          string // "" = ROOT/etc/apk/keys
	AllowUntrusted   bool   // accept indexes no trusted key signs
	Arch             string // "" = ROOT/etc/apk/arch, else the host's
	InitDB           bool   // create the database (apk --initdb)
	NoScripts        bool   // do not run package scripts or triggers
	Simulate         bool   // solve and print, change nothing
	Quiet            bool   // only errors
	// Progress draws apk's progress bar on Out (also with Quiet, as apk does), ProgressWidth
	// wide (the terminal's columns; at least and by default 50) with ProgressChar ("" = "#").
	Progress      bool
	ProgressWidth int
	ProgressChar  string
	OverlayPaths  []string // root-relative paths placed by the overlay: never overwritten
	// CleanProtected drops a package's copy of a locally changed protected file (etc/...)
	// instead of writing it as FILE.apk-new (apk --clean-protected).
	CleanProtected bool
	Diskless       bool // --initramfs-diskless-boot semantics (drop unsatisfiable world entries, keep going)
	Out            io.Writer
	// Err receives ERROR:/WARNING: lines (apk prints them on stderr); nil = Out. They are
	// printed even with Quiet, as with apk -q.
	Err io.Writer
	// MemoryBudget bounds decoded package bytes held at once (0 = DefaultMemoryBudget).
	MemoryBudget int64
	// Workers is the number of packages decoded in parallel (0 = GOMAXPROCS).
	Workers int
	// Preloaded are indexes LoadRepos already verified and parsed. Add uses one instead of
	// reading the index again only when it was loaded as Add would load it now (same path,
	// architecture and trusted keys); any other repository is loaded as usual.
	Preloaded *Repos
}

// indexPhaseLimit is the heap limit while indexes load and the solver runs (see run).
const indexPhaseLimit = 64 << 20

// DefaultMemoryBudget keeps the installer's peak RSS well inside an initramfs (a package larger
// than the budget is still decoded, alone).
const DefaultMemoryBudget = 10 << 20

// PackageError is one package that could not be installed.
type PackageError struct {
	Package string // name-version
	Err     error
}

func (e PackageError) Error() string {
	if m := e.Err.Error(); strings.HasPrefix(m, e.Package+":") {
		return m // the cause already names the package
	}
	return e.Package + ": " + e.Err.Error()
}

func (e PackageError) Unwrap() error { return e.Err }

// Result reports what Add did.
type Result struct {
	Installed []string       // "name-version" in install order
	Dropped   []string       // world constraints dropped (Diskless), with the reason
	Failed    []PackageError // packages that failed; each names the package
	Errors    int            // apk's error count (failed packages and scripts)
	Preloaded int            // repositories taken from Options.Preloaded
	Timings   Timings        // where the time went (for boot reports and benchmarks)
}

// Timings splits Add's wall time into its phases. Commit includes the pre/post scripts (which
// run beside the extraction of later packages, so Scripts is part of, not added to, Commit) but
// not Triggers or Database.
type Timings struct {
	Indexes  time.Duration // load, verify and parse the repository indexes
	Solve    time.Duration
	Commit   time.Duration // decode, verify and extract every package, with its scripts
	Scripts  time.Duration // sum of the pre/post install scripts' run times (within Commit)
	Triggers time.Duration
	Database time.Duration // lib/apk/db writes
	Total    time.Duration
}

// ErrIncomplete means the transaction finished but some packages or scripts failed (Result
// lists them; apk's summary line already said "N errors; ...").
var ErrIncomplete = errors.New("installation incomplete")

// ErrUnsatisfiable wraps a solver failure (its text is apk's "unable to select packages" report).
var ErrUnsatisfiable = errors.New("unable to select packages")

// Add installs world into opts.Root, merging it into ROOT/etc/apk/world.
func Add(ctx context.Context, opts Options, world []string) (*Result, error) {
	out := opts.Out
	if out == nil {
		out = io.Discard
	}
	errw := opts.Err
	if errw == nil {
		errw = out
	}
	scriptOut := out // scripts' own output is shown even with Quiet (apk lets them inherit stdio)
	if opts.Quiet {
		out = io.Discard
	}
	var bar *progressBar
	if opts.Progress && opts.Out != nil {
		// Everything written to the terminal clears the bar first, as apk's buffered stdout does.
		bar = newProgressBar(opts.Out, opts.ProgressWidth, opts.ProgressChar)
		out, errw, scriptOut = bar.writer(out), bar.writer(errw), bar.writer(scriptOut)
	}
	in := &installer{opts: opts, out: out, errw: errw, scriptOut: scriptOut, res: &Result{}, bar: bar}
	start := time.Now()
	defer func() { in.res.Timings.Total = time.Since(start) }()
	if err := in.run(ctx, world); err != nil {
		return in.res, err
	}
	return in.res, nil
}

type installer struct {
	opts Options
	out  io.Writer
	errw io.Writer // ERROR:/WARNING: lines
	// scriptOut gets scripts' output and the "Executing" lines (those only without Quiet).
	scriptOut io.Writer
	res       *Result
	arch      string
	repos     []*repo
	db        *db.DB
	stager    *stager      // during commit; nil where the root cannot stage
	seq       *sequencer   // during commit: output and scripts, in install order
	bar       *progressBar // nil without Options.Progress
	// scriptsRunning counts package scripts running now (yieldToScripts).
	scriptsRunning atomic.Int32
}

func (in *installer) run(ctx context.Context, worldArgs []string) error {
	o := &in.opts
	if o.Root == "" {
		return errors.New("no root directory given")
	}
	// Garbage collection only when the heap reaches a limit, which is set here unless the
	// process has its own (GOMEMLIMIT, or PID 1's). A short transaction then runs no
	// collection at all: each one stops the world while decoders are mid-package (about 7%
	// of a small install's wall time). It is turned off before the indexes load, not after:
	// turning it off waits for a collection the index allocations may have started. The
	// limit is generous while the indexes load and is lowered for the commit.
	ownLimit := debug.SetMemoryLimit(-1) == math.MaxInt64
	if ownLimit {
		debug.SetMemoryLimit(indexPhaseLimit)
		defer debug.SetMemoryLimit(math.MaxInt64)
		defer debug.SetGCPercent(debug.SetGCPercent(-1))
	}
	if o.InitDB && !o.Simulate {
		if err := os.MkdirAll(o.Root, 0o755); err != nil {
			return fmt.Errorf("root %s: %w", o.Root, err)
		}
	}
	if st, err := os.Stat(o.Root); (err != nil || !st.IsDir()) && !o.Simulate {
		return fmt.Errorf("root %s: not a directory", o.Root)
	}
	in.arch = o.Arch
	if in.arch == "" {
		in.arch = db.ReadArch(o.Root)
	}
	if in.arch == "" {
		in.arch = apkarch.Runtime()
	}
	if o.InitDB && !o.Simulate {
		if err := db.Init(o.Root, in.arch); err != nil {
			return err
		}
	}
	if !o.Simulate {
		if _, err := os.Stat(filepath.Join(o.Root, db.InstalledPath)); err != nil {
			return fmt.Errorf("root %s has no apk database (use --initdb): %w", o.Root, err)
		}
		unlock, err := db.Lock(o.Root)
		if err != nil {
			return err
		}
		defer unlock()
	}
	var err error
	if in.db, err = db.Read(o.Root); err != nil {
		return err
	}
	t0 := time.Now()
	if err := in.loadRepos(); err != nil {
		return err
	}
	in.res.Timings.Indexes = time.Since(t0)

	// World: existing entries, with new ones replacing an entry of the same name.
	oldWorld, err := db.ReadWorld(o.Root)
	if err != nil {
		return err
	}
	worldStr, deps, err := mergeWorld(oldWorld, worldArgs)
	if err != nil {
		return err
	}
	req := solver.Request{World: deps, BrokenWorld: o.Diskless}
	for _, r := range in.repos {
		req.Repos = append(req.Repos, solver.Repository{Tag: r.tag, Packages: r.pkgs})
	}
	for _, e := range in.db.Packages {
		req.Installed = append(req.Installed, e.Pkg)
	}
	t0 = time.Now()
	sol, err := solver.Solve(req)
	if err != nil {
		return &unsatisfiable{err}
	}
	in.res.Timings.Solve = time.Since(t0)
	for _, d := range sol.Dropped {
		// Like apk's --force-broken-world, the entry stays in world (a later boot with the
		// package available installs it); this boot goes on without it.
		in.res.Dropped = append(in.res.Dropped, d.String()+": unsatisfiable, not installed")
	}
	if sol.DroppedReport != "" {
		fmt.Fprintln(in.out, strings.TrimSuffix(sol.DroppedReport, "\n"))
	}
	if o.Simulate {
		return sol.WriteSimulation(in.out, solver.StyleAPK2)
	}
	if ownLimit {
		// The commit's buffers are bounded by the memory budget: the limit now sits just
		// above what the indexes and the solution hold plus the budget (peak RSS target:
		// 32 MiB), so a big index cannot make the GC thrash.
		budget := o.MemoryBudget
		if budget <= 0 {
			budget = DefaultMemoryBudget
		}
		// runtime/metrics, not ReadMemStats: that stops the world (0.4 ms here).
		heap := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		metrics.Read(heap)
		var held int64
		if heap[0].Value.Kind() == metrics.KindUint64 {
			held = int64(heap[0].Value.Uint64())
		}
		debug.SetMemoryLimit(max(26<<20, held+2*budget))
	}
	if err := in.commit(ctx, sol); err != nil {
		return err
	}
	if err := db.WriteWorld(o.Root, worldStr); err != nil {
		return err
	}
	if o.Arch != "" || db.ReadArch(o.Root) == "" {
		if err := db.WriteFileAtomic(filepath.Join(o.Root, db.ArchPath), []byte(in.arch+"\n"), 0o644); err != nil {
			return err
		}
	}
	in.printOK(sol)
	if in.res.Errors > 0 && !o.Diskless {
		return fmt.Errorf("%w: %d errors, %d packages failed", ErrIncomplete, in.res.Errors, len(in.res.Failed))
	}
	return nil
}

// unsatisfiable keeps the solver's report as the message while matching ErrUnsatisfiable.
type unsatisfiable struct{ err error }

func (u *unsatisfiable) Error() string { return u.err.Error() }

func (u *unsatisfiable) Unwrap() []error {
	return []error{ErrUnsatisfiable, u.err}
}

func mergeWorld(old, add []string) ([]string, []pkg.Dependency, error) {
	oldDeps, err := solver.ParseWorld(old)
	if err != nil {
		return nil, nil, fmt.Errorf("etc/apk/world: %w", err)
	}
	addDeps, err := solver.ParseWorld(add)
	if err != nil {
		return nil, nil, err
	}
	deps := solver.AddWorld(oldDeps, addDeps)
	world := make([]string, len(deps))
	for i, d := range deps {
		world[i] = d.String()
	}
	return world, deps, nil
}
