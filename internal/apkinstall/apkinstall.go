// Package apkinstall installs a world from Alpine repositories into a root, in-process: it is
// what `apk add --root R [--initdb] ...` does, and what PID 1 calls instead of running apk.
//
// Pipeline: load and verify the indexes, solve (internal/apkinstall/solver), then decode and
// verify packages in parallel (internal/apkinstall/pkgstream: index C: → control member →
// datahash → per-file SHA-1) under a memory budget, while a single writer extracts them strictly
// in install order, runs their scripts, and finally runs triggers and writes the database.
package apkinstall

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ramboot/ramboot/internal/apkarch"
	"github.com/ramboot/ramboot/internal/apkinstall/db"
	"github.com/ramboot/ramboot/internal/apkinstall/extract"
	"github.com/ramboot/ramboot/internal/apkinstall/index"
	"github.com/ramboot/ramboot/internal/apkinstall/pkg"
	"github.com/ramboot/ramboot/internal/apkinstall/pkgstream"
	"github.com/ramboot/ramboot/internal/apkinstall/scripts"
	"github.com/ramboot/ramboot/internal/apkinstall/sign"
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

type repo struct {
	tag    string
	pkgDir string // directory holding the .apk files ("" = ARCH subdirectory by package arch)
	base   string // repository directory when given as a directory
	pkgs   []*pkg.Package
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
}

// sequencer runs the commit's output and package scripts on one goroutine, strictly in the
// order they were queued, so the writer can extract the next packages while a post-install
// script runs (scripts are fork+exec+chroot: tens of milliseconds each under emulation). Output
// order stays exactly apk's. The writer calls wait before anything that must see every earlier
// script's effects (a pre-install script, files owned by users scripts may create, triggers).
type sequencer struct {
	ch   chan func()
	done chan struct{}
}

func newSequencer() *sequencer {
	s := &sequencer{ch: make(chan func(), 64), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for f := range s.ch {
			f()
		}
	}()
	return s
}

// later queues f behind everything queued before it.
func (s *sequencer) later(f func()) { s.ch <- f }

// wait returns once everything queued so far has run.
func (s *sequencer) wait() {
	c := make(chan struct{})
	s.ch <- func() { close(c) }
	<-c
}

// stop runs what is queued and ends the goroutine.
func (s *sequencer) stop() {
	close(s.ch)
	<-s.done
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

// loadRepos reads the explicit repositories and ROOT/etc/apk/repositories, verifies each index
// and parses its packages.
func (in *installer) loadRepos() error {
	o := &in.opts
	keysDir := o.KeysDir
	if keysDir == "" {
		keysDir = filepath.Join(o.Root, db.KeysDir)
	}
	var digest [sha256.Size]byte
	usePreload := false
	if o.Preloaded != nil {
		// Only the very key set the preload verified with counts; any other (or a keys
		// directory that cannot be read) is loaded, and its errors reported, as usual.
		if d, err := keysDigest(keysDir); err == nil && d == o.Preloaded.keys {
			digest, usePreload = d, true
		}
	}
	// The key ring is only needed for an index that was not preloaded.
	var keys *sign.KeyRing
	keyRing := func() (*sign.KeyRing, error) {
		if keys != nil {
			return keys, nil
		}
		var err error
		keys, err = sign.LoadKeyRing(keysDir)
		return keys, err
	}
	if !usePreload {
		if _, err := keyRing(); err != nil {
			return err
		}
	}
	list := append([]Repo(nil), o.Repos...)
	reposFile := o.RepositoriesFile
	if reposFile == "" {
		reposFile = filepath.Join(o.Root, db.ReposPath)
	} else if _, err := os.Stat(reposFile); err != nil {
		return fmt.Errorf("repositories file: %w", err)
	}
	lines, err := db.ReadRepositories(reposFile)
	if err != nil {
		return err
	}
	for _, l := range lines {
		p := l.URL
		if strings.Contains(p, "://") {
			if !strings.HasPrefix(p, "file://") {
				fmt.Fprintf(in.errw, "WARNING: Ignoring %s: network repositories are not supported\n", p)
				continue
			}
			p = strings.TrimPrefix(p, "file://")
		}
		p = strings.TrimPrefix(p, "file:")
		list = append(list, Repo{Tag: l.Tag, Path: p})
	}
	seen := map[Repo]bool{}
	for _, r := range list {
		if seen[r] {
			continue
		}
		seen[r] = true
		rp := &repo{tag: r.Tag}
		idxPath, isDir := idxPathOf(r.Path, in.arch)
		if isDir {
			rp.base = r.Path
		} else {
			rp.pkgDir = filepath.Dir(r.Path)
		}
		var pkgs []*pkg.Package
		var pre *preloaded
		if usePreload {
			pre = o.Preloaded.preloadFor(r.Path, idxPath, in.arch, digest, o.AllowUntrusted)
		}
		if pre != nil {
			// Copies: Add annotates the records (repository number and tag) and the
			// preloaded ones stay as they were for any other user.
			pkgs = make([]*pkg.Package, len(pre.pkgs))
			for i, p := range pre.pkgs {
				cp := *p
				pkgs[i] = &cp
			}
			in.res.Preloaded++
		} else {
			keys, err := keyRing()
			if err != nil {
				return err
			}
			ix, err := index.Load(idxPath, keys, o.AllowUntrusted)
			if err != nil {
				if errors.Is(err, sign.ErrUntrusted) {
					err = fmt.Errorf("%w (trusted keys from %s; use --allow-untrusted to accept it)", err, keysDir)
				}
				if o.Diskless {
					// The boot goes on with the repositories it can trust.
					fmt.Fprintf(in.errw, "WARNING: Ignoring %s: %v\n", r.Path, err)
					continue
				}
				return err
			}
			pkgs, err = pkg.ParseIndex(bytes.NewReader(ix.Text))
			if err != nil {
				return fmt.Errorf("index %s: %w", idxPath, err)
			}
		}
		for _, p := range pkgs {
			p.Repo = len(in.repos)
			p.RepoTag = r.Tag
		}
		rp.pkgs = pkgs
		in.repos = append(in.repos, rp)
	}
	return nil
}

func (in *installer) pkgFile(p *pkg.Package) string {
	name := p.Name + "-" + p.Version + ".apk"
	if p.Repo < 0 || p.Repo >= len(in.repos) {
		return ""
	}
	r := in.repos[p.Repo]
	if r.pkgDir != "" {
		return filepath.Join(r.pkgDir, name)
	}
	arch := p.Arch
	if arch == "" || arch == "noarch" {
		arch = in.arch
	}
	return filepath.Join(r.base, arch, name)
}

// printOK prints apk 2.x's summary line from the database as it now is (failed packages are
// not counted), or "N errors; ..." when something failed.
func (in *installer) printOK(sol *solver.Solution) {
	s := *sol
	s.InstalledBytes, s.InstalledPackages = 0, len(in.db.Packages)
	for _, e := range in.db.Packages {
		s.InstalledBytes += e.Pkg.InstalledSize
	}
	fmt.Fprintln(in.out, s.OKLine(solver.StyleAPK2, in.res.Errors))
}

// decoded is one package's decode outcome, delivered to the writer in install order.
type decoded struct {
	p      *pkgstream.Package
	err    error
	cost   int64
	arena  *arena // backs p's file contents; returned to the pool once written
	staged []int  // per file: the descriptor of its staged content, or -1; nil = none staged
}

// arena is one package's pkgstream.Allocator; release gives its buffers back once the
// package's files are written.
type arena struct {
	mem   *region
	spans []span
}

func (a *arena) Alloc(n int) []byte {
	b, off, ok := a.mem.get(n)
	if ok {
		a.spans = append(a.spans, span{off, n})
	}
	return b
}

func (a *arena) release() {
	if a == nil {
		return
	}
	for _, s := range a.spans {
		a.mem.put(s.off, s.n)
	}
	a.spans = nil
}

// budget is a byte semaphore acquired strictly in install order (by one dispatcher), so a later
// package can never starve the one the writer is waiting for.
type budget struct {
	mu    sync.Mutex
	cond  *sync.Cond
	avail int64
}

func newBudget(n int64) *budget {
	b := &budget{avail: n}
	b.cond = sync.NewCond(&b.mu)
	return b
}

func (b *budget) acquire(ctx context.Context, n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.avail < n {
		if ctx.Err() != nil {
			return false
		}
		b.cond.Wait()
	}
	b.avail -= n
	return true
}

func (b *budget) release(n int64) {
	b.mu.Lock()
	b.avail += n
	b.mu.Unlock()
	b.cond.Broadcast()
}

type job struct {
	i    int // index in the changes
	cost int64
}

// jobQueue holds the packages admitted under the memory budget (in install order) until a
// worker takes one.
type jobQueue struct {
	mu      sync.Mutex
	cond    *sync.Cond
	pending []job
	closed  bool
	// need is the index of the change the writer wants next; bigFirst takers go for the
	// costliest package only while the writer's next few are all taken.
	need atomic.Int64
}

// aheadWindow is how many of the writer's next packages must be decoding or decoded before a
// bigFirst taker leaves install order: at the start (musl, busybox and its scripts gate
// everything) the writer is fed first, and the big package starts once decoders are ahead.
const aheadWindow = 4

func newJobQueue() *jobQueue {
	q := &jobQueue{}
	q.cond = sync.NewCond(&q.mu)
	return q
}

func (q *jobQueue) push(j job) {
	q.mu.Lock()
	q.pending = append(q.pending, j)
	q.mu.Unlock()
	q.cond.Signal()
}

func (q *jobQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cond.Broadcast()
}

// take returns the next job in install order, or with bigFirst the costliest one pending
// (the earliest among equals); false once the queue is closed and empty. Every admitted job is
// eventually taken, and in-order takers always get the one the writer needs next, so admitting
// in order under the budget cannot deadlock.
func (q *jobQueue) take(bigFirst bool) (job, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.pending) == 0 {
		if q.closed {
			return job{}, false
		}
		q.cond.Wait()
	}
	k := 0
	if bigFirst && int64(q.pending[0].i) >= q.need.Load()+aheadWindow {
		for i, j := range q.pending {
			if j.cost > q.pending[k].cost {
				k = i
			}
		}
	}
	j := q.pending[k]
	q.pending = append(q.pending[:k], q.pending[k+1:]...)
	return j, true
}

// decodeAll starts the parallel decoders and returns one channel per change (nil for changes
// that need no package file).
func (in *installer) decodeAll(ctx context.Context, changes []solver.Change, st *stager) ([]chan decoded, *budget, *jobQueue) {
	limit := in.opts.MemoryBudget
	if limit <= 0 {
		limit = DefaultMemoryBudget
	}
	workers := in.opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	bud := newBudget(limit)
	pool := newRegion(int(limit + limit/4))
	chans := make([]chan decoded, len(changes))
	q := newJobQueue()
	for i, c := range changes {
		if c.New != nil && c.New.InstalledSize > 0 {
			chans[i] = make(chan decoded, 1)
		}
	}
	go func() {
		defer q.close()
		for i, c := range changes {
			if chans[i] == nil {
				continue
			}
			// What a decoded package holds until written: its inflated data segment, about its
			// installed size. (Compressed files go through one reused buffer per worker.) Capped
			// so one huge package can still go alone.
			cost := min(max(c.New.InstalledSize, 1), limit)
			if !bud.acquire(ctx, cost) {
				chans[i] <- decoded{err: ctx.Err()}
				continue
			}
			q.push(job{i, cost})
		}
	}()
	for w := 0; w < workers; w++ {
		// With several workers, one takes the biggest package admitted so far instead of the
		// next in order: a big package (libcrypto3: 4.5 MB, the longest single decode) then
		// starts at once instead of when the workers reach it, and is ready when the writer
		// is; the others keep feeding the writer in order.
		bigFirst := workers > 1 && w == 0
		go func() {
			var raw []byte // per worker, reused: compressed files are read whole
			for {
				j, ok := q.take(bigFirst)
				if !ok {
					return
				}
				if err := ctx.Err(); err != nil {
					chans[j.i] <- decoded{err: err, cost: j.cost}
					continue
				}
				var d decoded
				d, raw = in.decodeOne(changes[j.i].New, j.cost, pool, raw)
				if st != nil && d.err == nil {
					var staged int64
					if d.staged, staged = st.stage(d.p, d.arena); d.staged != nil {
						// Its contents are in the root's file system now, not in memory:
						// later packages may be decoded in their place.
						d.arena = nil
						freed := min(staged, d.cost)
						d.cost -= freed
						bud.release(freed)
					}
				}
				chans[j.i] <- d
				// Let the writer (woken by the send, queued behind this goroutine) run now:
				// with as many workers as CPUs it would otherwise wait for a preemption,
				// up to 10 ms, while the package it needs sits decoded.
				runtime.Gosched()
			}
		}()
	}
	return chans, bud, q
}

func (in *installer) decodeOne(p *pkg.Package, cost int64, pool *region, raw []byte) (decoded, []byte) {
	name := p.Name + "-" + p.Version
	file := in.pkgFile(p)
	if file == "" {
		return decoded{err: fmt.Errorf("%s: not in any repository", name), cost: cost}, raw
	}
	id, err := identity(p.Checksum)
	if err != nil {
		return decoded{err: fmt.Errorf("%s: index checksum: %w", name, err), cost: cost}, raw
	}
	pf, raw, err := openPackageFile(file, raw)
	if err != nil {
		return decoded{err: fmt.Errorf("%s: package file: %w", name, err), cost: cost}, raw
	}
	defer pf.close()
	a := &arena{mem: pool}
	var dp *pkgstream.Package
	err = catchFault(func() (err error) {
		dp, err = pkgstream.DecodeWith(name, pf.data, id, a)
		return err
	})
	if errors.Is(err, errFileChanged) {
		err = fmt.Errorf("%s: %w", name, err)
	}
	if err != nil {
		a.release()
		return decoded{err: fmt.Errorf("%w (file %s)", err, file), cost: cost}, raw
	}
	if dp.Info.Name != p.Name || dp.Info.Version != p.Version {
		a.release()
		return decoded{err: fmt.Errorf("%s: file %s contains %s-%s", name, file, dp.Info.Name, dp.Info.Version), cost: cost}, raw
	}
	return decoded{p: dp, cost: cost, arena: a}, raw
}

func identity(c string) ([]byte, error) {
	return db.ParseQ1(c)
}

// commit installs the changes in order.
func (in *installer) commit(ctx context.Context, sol *solver.Solution) error {
	o := &in.opts
	start := time.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	owners := in.fileOwners()
	ext, err := extract.OpenWith(o.Root, extract.Options{
		Overlay: o.OverlayPaths, CleanProtected: o.CleanProtected,
		Owned: func(name string) []byte {
			if e := owners[name]; e != nil {
				for _, d := range e.Dirs {
					for _, f := range d.Files {
						if f.Name == name {
							return f.Checksum
						}
					}
				}
			}
			return nil
		},
	})
	if err != nil {
		return err
	}
	defer ext.Close()
	in.seq = newSequencer()
	seqStopped := false
	stopSeq := func() {
		if !seqStopped {
			seqStopped = true
			in.seq.stop()
			in.seq = nil
		}
	}
	defer stopSeq()
	in.stager = newStager(ext)
	st := in.stager
	chans, bud, jobs := in.decodeAll(ctx, sol.Changes, st)
	next := 0 // changes before next have had their decoded result taken
	// On any exit, cancel and free the whole budget so the dispatcher and decoders wind down
	// instead of waiting for releases that will not come; results not taken are collected in
	// the background, closing their staged files (every channel receives exactly one).
	defer func() {
		cancel()
		bud.release(1 << 50)
		if st == nil {
			return
		}
		go func(rest []chan decoded) {
			for _, ch := range rest {
				if ch != nil {
					st.close((<-ch).staged)
				}
			}
		}(chans[next:])
	}()
	dirs := &dirStates{acl: map[string]extract.ACL{}, touched: map[string]bool{}, updatable: map[string]bool{}}
	changed := map[*db.Entry]bool{}
	n := len(sol.Changes)
	if in.bar != nil {
		var total int64
		for _, c := range sol.Changes {
			total += changeSize(c)
		}
		in.bar.total = total
	}
	for i, c := range sol.Changes {
		if err := ctx.Err(); err != nil {
			return err
		}
		line := c.Line(i+1, n, solver.StyleAPK2)
		in.seq.later(func() { fmt.Fprintln(in.out, line) })
		if in.bar != nil {
			// Under the change's line, as apk draws it while the package installs; what is
			// done by then is every earlier change (their work was queued before this line).
			var prev int64
			if i > 0 {
				prev = changeSize(sol.Changes[i-1])
			}
			in.seq.later(func() { in.bar.add(prev) })
		}
		if c.New == nil {
			in.seq.wait() // deinstall scripts run inline, after everything before them
			in.purge(ctx, c.Old, owners)
			continue
		}
		if c.Old == c.New && !c.Reinstall {
			// Updating pinning only.
			if e := in.db.Find(c.New.Name); e != nil {
				cp := *e.Pkg
				cp.RepoTag = c.NewTag
				e.Pkg = &cp
			}
			continue
		}
		name := c.New.Name + "-" + c.New.Version
		var dp *pkgstream.Package
		if chans[i] != nil {
			jobs.need.Store(int64(i))
			d := <-chans[i]
			next = i + 1
			if d.err != nil {
				bud.release(d.cost)
				in.fail(name, d.err)
				continue
			}
			dp = d.p
			func() {
				defer bud.release(d.cost)
				defer d.arena.release()
				if st != nil {
					defer st.close(d.staged)
				}
				entry, err := in.installOne(ctx, ext, c, dp, d.staged, owners, dirs)
				if err != nil {
					in.fail(name, err)
					return
				}
				changed[entry] = true
			}()
			continue
		}
		// Meta package (I:0): nothing to unpack, only recorded.
		cp := *c.New
		cp.RepoTag = c.NewTag
		entry := &db.Entry{Pkg: &cp}
		in.replaceEntry(c.Old, entry)
		changed[entry] = true
		in.res.Installed = append(in.res.Installed, name)
	}
	if in.bar != nil && n > 0 {
		last := changeSize(sol.Changes[n-1])
		in.seq.later(func() { in.bar.add(last) })
	}
	// Every script has run before directory permissions are fixed and triggers run, as in apk.
	stopSeq()
	if err := in.fixDirPerms(ext, dirs.updatable); err != nil {
		return err
	}
	in.res.Timings.Commit = time.Since(start)
	// The database is written while the triggers run (the busybox trigger is a few
	// milliseconds of a child process, and the other CPU would idle). What it records does not
	// depend on them, except the "broken script" flag of a trigger that fails: that package's
	// flag is set afterwards and the database written again.
	dbErr := make(chan error, 1)
	go func() {
		t0 := time.Now()
		err := in.db.Write()
		in.res.Timings.Database = time.Since(t0)
		dbErr <- err
	}()
	var broken []*db.Entry
	if !o.NoScripts {
		t0 := time.Now()
		broken = in.runTriggers(ctx, changed, dirs.touched)
		in.res.Timings.Triggers = time.Since(t0)
	}
	if err := <-dbErr; err != nil {
		return err
	}
	if len(broken) == 0 {
		return nil
	}
	for _, e := range broken {
		if !strings.Contains(e.Flags, "s") {
			e.Flags += "s"
		}
	}
	return in.db.Write()
}

// changeSize is what a change counts for in the progress bar: the installed size it adds or
// removes (apk's progress is by bytes too).
func changeSize(c solver.Change) int64 {
	switch {
	case c.New != nil:
		return max(c.New.InstalledSize, 0)
	case c.Old != nil:
		return max(c.Old.InstalledSize, 0)
	}
	return 0
}

// fail records a failed package; during the commit it is reported in install order.
func (in *installer) fail(name string, err error) {
	if in.seq != nil {
		in.seq.later(func() { in.failNow(name, err) })
		return
	}
	in.failNow(name, err)
}

func (in *installer) failNow(name string, err error) {
	in.res.Errors++
	in.res.Failed = append(in.res.Failed, PackageError{Package: name, Err: err})
	fmt.Fprintf(in.errw, "ERROR: %v\n", err)
}

// fileOwners maps every installed file path to its owning entry.
func (in *installer) fileOwners() map[string]*db.Entry {
	m := map[string]*db.Entry{}
	for _, e := range in.db.Packages {
		for _, d := range e.Dirs {
			for _, f := range d.Files {
				m[f.Name] = e
			}
		}
	}
	return m
}

// mayOverwrite is apk's file-conflict rule: same package name or origin, the new package
// replaces the owner, or --force-overwrite (implied by the diskless boot).
func (in *installer) mayOverwrite(newp *pkg.Package, replaces []string, owner *db.Entry) bool {
	if in.opts.Diskless || owner.Pkg.Name == newp.Name {
		return true
	}
	if owner.Pkg.Origin != "" && owner.Pkg.Origin == newp.Origin {
		return true
	}
	for _, r := range replaces {
		if d, err := pkg.ParseDependency(r); err == nil && d.Name == owner.Pkg.Name {
			return true
		}
	}
	return false
}

func (in *installer) installOne(ctx context.Context, ext *extract.Extractor, c solver.Change, dp *pkgstream.Package, staged []int, owners map[string]*db.Entry, dirs *dirStates) (*db.Entry, error) {
	o := &in.opts
	p := c.New
	name := p.Name + "-" + p.Version
	if err := extract.Check(name, dp.Files); err != nil {
		return nil, err
	}
	var oldEntry *db.Entry
	if c.Old != nil {
		oldEntry = in.db.Find(c.Old.Name)
	}
	for _, f := range dp.Files {
		if f.Type == '5' {
			continue
		}
		if owner := owners[f.Name]; owner != nil && owner != oldEntry && !in.mayOverwrite(p, dp.Info.Replaces, owner) {
			return nil, fmt.Errorf("%s: trying to overwrite %s owned by %s-%s", name, f.Name, owner.Pkg.Name, owner.Pkg.Version)
		}
	}
	entry := &db.Entry{Pkg: withInstallFields(p, c.NewTag, dp), Triggers: dp.Info.Triggers, Scripts: dp.Scripts}
	if !o.NoScripts && hasScript(dp, "pre-install", c) {
		// The pre-install script sees everything before it, and the package's files see
		// what it did (users it added own them).
		in.seq.later(func() { in.runScript(ctx, entry, dp, "pre-install", c) })
		in.seq.wait()
	} else if needsIDs(dp.Files) {
		// Owners are resolved through etc/passwd and etc/group, which earlier scripts may
		// still be changing.
		in.seq.wait()
	}
	ext.ReloadIDs()
	n := countOpen(staged)
	res, err := ext.InstallStaged(name, dp.Files, staged)
	in.stager.closedBy(n - countOpen(staged)) // the extractor closes those in place
	if err != nil {
		return nil, err
	}
	if res.BrokenXattrs {
		entry.Flags += "x"
	}
	in.noteDirs(res.Dirs, dirs)
	entry.Dirs = res.Dirs
	for _, d := range res.Dirs {
		for _, f := range d.Files {
			if prev := owners[f.Name]; prev != nil && prev != oldEntry {
				removeFile(prev, f.Name)
			}
			owners[f.Name] = entry
		}
	}
	if oldEntry != nil {
		in.removeStale(oldEntry, entry, owners)
	}
	in.replaceEntry(c.Old, entry)
	in.res.Installed = append(in.res.Installed, name)
	if !o.NoScripts && hasScript(dp, "post-install", c) {
		// Runs while the writer goes on with later packages: it sees its package and
		// everything before it extracted, as with apk (and possibly some later files).
		in.seq.later(func() { in.runScript(ctx, entry, dp, "post-install", c) })
		if runtime.GOMAXPROCS(0) == 1 {
			// One CPU: overlapping gains nothing (the script and the extraction share
			// it), so the script sees exactly what apk's would: later packages can
			// make a script do more work (alpine-baselayout's runs /sbin/rc once
			// openrc is there).
			in.seq.wait()
		}
	}
	return entry, nil
}

// hasScript reports whether dp has the script runScript would run for typ.
func hasScript(dp *pkgstream.Package, typ string, c solver.Change) bool {
	if c.Old != nil {
		typ = strings.Replace(typ, "install", "upgrade", 1)
	}
	for _, s := range dp.Scripts {
		if s.Type == typ {
			return true
		}
	}
	return false
}

// needsIDs reports whether any file is owned by someone other than root, i.e. whether its
// extraction depends on the root's user and group files.
func needsIDs(files []pkgstream.File) bool {
	for _, f := range files {
		if f.UID != 0 || f.GID != 0 || f.Uname != "" && f.Uname != "root" || f.Gname != "" && f.Gname != "root" {
			return true
		}
	}
	return false
}

// withInstallFields copies the index record and adds what only .PKGINFO carries (replaces).
func withInstallFields(p *pkg.Package, tag string, dp *pkgstream.Package) *pkg.Package {
	cp := *p
	cp.RepoTag = tag
	cp.Replaces = nil
	for _, r := range dp.Info.Replaces {
		if d, err := pkg.ParseDependency(r); err == nil {
			cp.Replaces = append(cp.Replaces, d)
		}
	}
	cp.ReplacesPriority = dp.Info.ReplacesPriority
	return &cp
}

func (in *installer) runScript(ctx context.Context, e *db.Entry, dp *pkgstream.Package, typ string, c solver.Change) {
	args := []string{c.New.Version}
	if c.Old != nil {
		typ = strings.Replace(typ, "install", "upgrade", 1)
		args = append(args, c.Old.Version)
	}
	for _, s := range dp.Scripts {
		if s.Type != typ {
			continue
		}
		pv := e.Pkg.Name + "-" + e.Pkg.Version
		t0 := time.Now()
		err := scripts.Run(ctx, in.opts.Root, scripts.Script{Package: pv, Type: typ, Data: s.Data, Args: args}, in.scriptOut, in.opts.Quiet)
		in.res.Timings.Scripts += time.Since(t0)
		if err != nil {
			// apk marks the package "broken script", counts an error and carries on.
			in.res.Errors++
			if !strings.Contains(e.Flags, "s") {
				e.Flags += "s"
			}
			fmt.Fprintf(in.errw, "ERROR: %v\n", err)
		}
	}
}

func removeFile(e *db.Entry, name string) {
	for di := range e.Dirs {
		fs := e.Dirs[di].Files
		for fi := range fs {
			if fs[fi].Name == name {
				e.Dirs[di].Files = append(fs[:fi:fi], fs[fi+1:]...)
				return
			}
		}
	}
}

// removeStale deletes files the old version owned that the new one does not.
func (in *installer) removeStale(old, nw *db.Entry, owners map[string]*db.Entry) {
	for _, d := range old.Dirs {
		for _, f := range d.Files {
			if owners[f.Name] == old {
				os.Remove(filepath.Join(in.opts.Root, f.Name))
				delete(owners, f.Name)
			}
		}
	}
}

// purge removes a package like apk: pre-deinstall, its files, its directories no other
// package owns (when empty), post-deinstall, and its record.
func (in *installer) purge(ctx context.Context, p *pkg.Package, owners map[string]*db.Entry) {
	e := in.db.Find(p.Name)
	if e == nil {
		return
	}
	in.deinstallScript(ctx, e, "pre-deinstall")
	for _, d := range e.Dirs {
		for _, f := range d.Files {
			if owners[f.Name] == e {
				os.Remove(filepath.Join(in.opts.Root, f.Name))
				delete(owners, f.Name)
			}
		}
	}
	shared := map[string]bool{}
	for _, o := range in.db.Packages {
		if o != e {
			for _, d := range o.Dirs {
				shared[d.Name] = true
			}
		}
	}
	for i := len(e.Dirs) - 1; i >= 0; i-- {
		if n := e.Dirs[i].Name; n != "" && !shared[n] {
			os.Remove(filepath.Join(in.opts.Root, n)) // fails, as intended, unless empty
		}
	}
	in.deinstallScript(ctx, e, "post-deinstall")
	in.replaceEntry(p, nil)
}

func (in *installer) deinstallScript(ctx context.Context, e *db.Entry, typ string) {
	if in.opts.NoScripts {
		return
	}
	for _, s := range e.Scripts {
		if s.Type != typ {
			continue
		}
		pv := e.Pkg.Name + "-" + e.Pkg.Version
		err := scripts.Run(ctx, in.opts.Root, scripts.Script{Package: pv, Type: typ, Data: s.Data, Args: []string{e.Pkg.Version}}, in.scriptOut, in.opts.Quiet)
		if err != nil {
			in.res.Errors++
			fmt.Fprintf(in.errw, "ERROR: %v\n", err)
		}
	}
}

func (in *installer) replaceEntry(old *pkg.Package, nw *db.Entry) {
	if old != nil {
		for i, e := range in.db.Packages {
			if e.Pkg.Name == old.Name {
				if nw == nil {
					in.db.Packages = append(in.db.Packages[:i:i], in.db.Packages[i+1:]...)
				} else {
					in.db.Packages[i] = nw
				}
				return
			}
		}
	}
	if nw != nil {
		in.db.Packages = append(in.db.Packages, nw)
	}
}

// dirACL is apk_db_dir_apply_diri_permissions: the owner with the lowest uid (then gid) decides;
// owners with the same uid and gid narrow the mode to the bits they all grant.
func dirACL(cur extract.ACL, have bool, acl extract.ACL) extract.ACL {
	switch {
	case !have || acl.UID < cur.UID || acl.UID == cur.UID && acl.GID < cur.GID:
		return acl
	case acl.UID == cur.UID && acl.GID == cur.GID:
		cur.Mode &= acl.Mode
	}
	return cur
}

// fixDirPerms applies apk 2.x's end-of-commit directory permissions
// (apk_db_update_directory_permissions) to the updatable directories: the ACL merged over
// every package that owns the directory.
func (in *installer) fixDirPerms(ext *extract.Extractor, updatable map[string]bool) error {
	merged := map[string]extract.ACL{}
	var names []string
	for _, e := range in.db.Packages {
		for _, d := range e.Dirs {
			if !updatable[d.Name] || d.Name == "" {
				continue
			}
			cur, have := merged[d.Name]
			if !have {
				names = append(names, d.Name)
			}
			merged[d.Name] = dirACL(cur, have, d.ACL)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		if err := ext.SetDirACL(n, merged[n]); err != nil {
			return err
		}
	}
	return nil
}

// noteDirs records, as apk_db_dir_prepare does, which directories may have their permissions
// fixed up at the end: those this transaction created, and existing ones whose metadata
// matches what their owners (including this package) declare.
func (in *installer) noteDirs(dirs []extract.DirRecord, st *dirStates) {
	for _, d := range dirs {
		cur, have := st.acl[d.Name]
		if !have {
			// Owners already installed before this transaction count too.
			for _, e := range in.db.Packages {
				for _, od := range e.Dirs {
					if od.Name == d.Name {
						cur, have = dirACL(cur, have, od.ACL), true
					}
				}
			}
		}
		cur = dirACL(cur, have, d.ACL)
		st.acl[d.Name] = cur
		st.touched[d.Name] = true
		if d.Created {
			st.updatable[d.Name] = true
		} else if !st.updatable[d.Name] {
			e := d.Existing
			st.updatable[d.Name] = e.UID == cur.UID && e.GID == cur.GID && e.Mode == cur.Mode
		}
	}
}

type dirStates struct {
	acl       map[string]extract.ACL
	touched   map[string]bool
	updatable map[string]bool
}

// runTriggers runs the .trigger script of every package whose trigger globs match a directory:
// a package changed in this transaction sees all matching directories, others only the
// directories this transaction touched (apk 2.x commit.c run_triggers). It returns the packages
// whose trigger failed; the caller flags them.
func (in *installer) runTriggers(ctx context.Context, changed map[*db.Entry]bool, touched map[string]bool) (broken []*db.Entry) {
	var allDirs []string
	seen := map[string]bool{}
	for _, e := range in.db.Packages {
		for _, d := range e.Dirs {
			if !seen[d.Name] {
				seen[d.Name] = true
				allDirs = append(allDirs, d.Name)
			}
		}
	}
	for _, e := range in.db.Packages {
		if len(e.Triggers) == 0 {
			continue
		}
		var script []byte
		for _, s := range e.Scripts {
			if s.Type == "trigger" {
				script = s.Data
			}
		}
		if script == nil {
			continue
		}
		var args []string
		for _, d := range allDirs {
			if !changed[e] && !touched[d] {
				continue
			}
			for _, g := range e.Triggers {
				if ok, _ := path.Match(g, "/"+d); ok {
					args = append(args, "/"+d)
					break
				}
			}
		}
		if len(args) == 0 {
			continue
		}
		pv := e.Pkg.Name + "-" + e.Pkg.Version
		if err := scripts.Run(ctx, in.opts.Root, scripts.Script{Package: pv, Type: "trigger", Data: script, Args: args}, in.scriptOut, in.opts.Quiet); err != nil {
			in.res.Errors++
			broken = append(broken, e)
			fmt.Fprintf(in.errw, "ERROR: %v\n", err)
		}
	}
	return broken
}
