package solver

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/ramboot/ramboot/internal/apkinstall/pkg"
)

// Repository is one repository index; Tag is "" for the default set or the pinning tag
// (without "@") from "@tag URL" in etc/apk/repositories.
type Repository struct {
	Tag      string
	Packages []*pkg.Package
}

// Flags are apk's solver flags (APK_SOLVERF_*).
type Flags uint32

// Solver flags.
const (
	FlagUpgrade        Flags = 1 << iota // prefer the newest version over the installed one
	FlagAvailable                        // prefer packages available from a repository (upgrade -a)
	FlagReinstall                        // reinstall even if unchanged (fix)
	FlagLatest                           // always pick the latest version (-l)
	FlagIgnoreConflict                   // ignore conflicts (--force-broken-... internal)
	FlagInstalled                        // keep installed versions (upgrade --ignore)
	FlagRemove                           // solving for a removal
)

// NameFlags are flags set on every provider of one name (apk_solver_set_name_flags): Flags
// apply to the providers, Inheritable also to what they pull in.
type NameFlags struct {
	Flags, Inheritable Flags
}

// Request is one solve.
type Request struct {
	World     []pkg.Dependency
	Repos     []Repository
	Installed []*pkg.Package // lib/apk/db/installed, in file order
	// BrokenWorld is apk's --force-broken-world (implied by --initramfs-diskless-boot): world
	// entries that cannot be satisfied are dropped and the solve restarted.
	BrokenWorld bool
	// Arch lists the architectures packages may have (apk 3 marks others uninstallable);
	// empty disables the check. "noarch" is always accepted.
	Arch []string
	// Flags apply to everything the world pulls in (apk_solver_solve's solver_flags).
	Flags Flags
	// NameFlags are per-name flags, e.g. apk add -u NAME (Flags and Inheritable = upgrade) or
	// apk fix NAME (reinstall). apk add sets an entry, possibly zero, for every name on its
	// command line; names with an entry are selected before the others.
	NameFlags map[string]NameFlags
	// Preupgrade is apk's performing_preupgrade: prefer installed versions unless upgrading.
	Preupgrade bool
	// Style selects the error report of apk 2.14 (default: Alpine <= 3.22) or apk 3, which
	// sorts the "satisfies:" and "breaks:" lists.
	Style Style
}

// Change is one step of the changeset. Old == nil installs, New == nil removes; Old == New
// with differing tags only updates the pinning ("Updating pinning"), Reinstall reinstalls.
type Change struct {
	Old, New       *pkg.Package
	OldTag, NewTag string // repository tag the package is pinned to ("" default)
	Reinstall      bool
	// Repos lists the indexes (into Request.Repos, ascending) of the repositories offering
	// New; identical packages (same C:) in several repositories are one package to apk, and
	// New is the record of the first. Empty for a package only known from the installed db.
	Repos []int
}

// Solution is a successful solve.
type Solution struct {
	// Changes in apk's commit order (dependencies first). Unchanged installed packages are
	// not listed.
	Changes []Change
	// Dropped lists world entries removed because they could not be satisfied (BrokenWorld).
	Dropped []pkg.Dependency
	// DroppedReport is the apk error report that caused the first drop ("" if none).
	DroppedReport string
	// InstalledBytes and InstalledPackages describe the root after the changes (the numbers
	// apk prints on its "OK:" line).
	InstalledBytes    int64
	InstalledPackages int
	// Unchanged lists the installed packages that stay as they are, in changeset order.
	Unchanged []*pkg.Package

	st *state // the final solver state, for reports about the result
}

// Error is an unsatisfiable request; Report is exactly what apk prints
// ("ERROR: unable to select packages:\n  name-1:\n    breaks: ...\n").
type Error struct {
	Report string
}

func (e *Error) Error() string { return strings.TrimSuffix(e.Report, "\n") }

// ErrMissingTag is returned when a world entry names a repository tag no repository has.
var ErrMissingTag = errors.New("Not committing changes due to missing repository tags.")

// nameLess is apk_name_cmp_display: case-insensitive, then byte order.
func nameLess(a, b string) bool {
	la, lb := strings.ToLower(a), strings.ToLower(b)
	if la != lb {
		return la < lb
	}
	return a < b
}

// Solve computes the changeset for req.
func Solve(req Request) (*Solution, error) {
	d, err := newDB(&req)
	if err != nil {
		return nil, err
	}
	world := make([]dep, len(req.World))
	worldTags := make([]int, len(req.World))
	for i, w := range req.World {
		world[i] = dep{name: d.getName(w.Name), d: w}
		worldTags[i] = d.tagID(w.Tag)
	}
	if len(d.tags) > 32 {
		return nil, fmt.Errorf("solver: %d repository tags, at most 32 supported", len(d.tags))
	}
	d.indexReverse()
	order := make([]int, len(world))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return nameLess(world[order[a]].name.name, world[order[b]].name.name) })
	sortedWorld := make([]dep, len(world))
	sortedTags := make([]int, len(world))
	for i, j := range order {
		sortedWorld[i], sortedTags[i] = world[j], worldTags[j]
	}
	world, worldTags = sortedWorld, sortedTags

	if !req.BrokenWorld {
		for i, w := range world {
			if worldTags[i] != 0 && d.tags[worldTags[i]].allowed == 0 {
				return nil, fmt.Errorf("world entry %s: %w", w.d.String(), ErrMissingTag)
			}
		}
	}

	broken := make([]bool, len(world))
	sol := &Solution{}
	for attempt := 0; ; attempt++ {
		s := solveOnce(d, &req, attempt == 0, world, worldTags, broken)
		if s.errors == 0 {
			s.world = world
			sol.fill(s)
			return sol, nil
		}
		report := s.errorReport(world, worldTags)
		if !req.BrokenWorld {
			return nil, &Error{Report: report}
		}
		newly := false
		for i, w := range world {
			if broken[i] {
				continue
			}
			if p := w.name.chosen.pkg; p == nil || p.err {
				broken[i] = true
				newly = true
				sol.Dropped = append(sol.Dropped, w.d)
			}
		}
		if sol.DroppedReport == "" {
			sol.DroppedReport = report
		}
		if !newly {
			// apk would restart forever here; report instead of looping.
			return nil, &Error{Report: report}
		}
	}
}

func solveOnce(d *db, req *Request, first bool, world []dep, worldTags []int, broken []bool) *state {
	d.reset()
	s := &state{db: d, preupgrade: req.Preupgrade, style: req.Style, ignoreConflict: req.Flags&FlagIgnoreConflict != 0}
	// apk sets name flags before solving; a --force-broken-world restart clears package state
	// and with it these flags, which is reproduced by applying them to the first attempt only.
	for nm, f := range req.NameFlags {
		n := d.getName(nm)
		n.solverFlagsSet = true
		if !first {
			continue
		}
		for _, p := range n.providers {
			p.pkg.flags |= uint32(f.Flags)
			p.pkg.flagsInheritable |= uint32(f.Inheritable)
		}
	}
	s.flagsInherit = uint32(req.Flags)
	s.dirty.sel = dirtyLink
	s.resolvenow.sel = unresLink
	s.defaultRepos = d.pinningRepos(defaultPinningMask)
	for i := range world {
		if !broken[i] {
			s.discoverName(world[i].name)
		}
	}
	for i := range world {
		if !broken[i] {
			s.pinningInherit = 1 << uint(worldTags[i])
			s.applyConstraint(nil, &world[i])
		}
	}
	s.flagsInherit, s.pinningInherit = 0, 0
	for {
		for !s.dirty.empty() {
			s.reconsiderName(s.dirty.popFront())
		}
		n := s.dequeueNext()
		if n == nil {
			break
		}
		s.selectPackage(n)
	}
	s.generateChangeset(world)
	return s
}

// counted reports whether apk prints and counts the change (count_change/print_change).
func (c *change) counted() bool {
	return c.new != c.old || c.reinstall || c.newTag != c.oldTag
}

func (sol *Solution) fill(s *state) {
	var bytes int64
	for _, p := range s.db.installed {
		bytes += p.p.InstalledSize
	}
	count := len(s.db.installed)
	for i := range s.changes {
		c := &s.changes[i]
		if c.new != nil {
			bytes += c.new.p.InstalledSize
			count++
		}
		if c.old != nil {
			bytes -= c.old.p.InstalledSize
			count--
		}
		if !c.counted() {
			if c.new != nil {
				sol.Unchanged = append(sol.Unchanged, c.new.p)
			}
			continue
		}
		out := Change{OldTag: tagName(s.db, c.oldTag), NewTag: tagName(s.db, c.newTag), Reinstall: c.reinstall}
		if c.old != nil {
			out.Old = c.old.p
		}
		if c.new != nil {
			out.New = c.new.p
			for i := 0; i < 63; i++ {
				if c.new.repos&(1<<uint(i+1)) != 0 {
					out.Repos = append(out.Repos, i)
				}
			}
		}
		sol.Changes = append(sol.Changes, out)
	}
	sol.InstalledBytes, sol.InstalledPackages = bytes, count
	sol.st = s
}

func tagName(d *db, i int) string { return strings.TrimPrefix(d.tags[i].name, "@") }

// ParseWorld parses world entries given on the command line or read from etc/apk/world, with
// apk's error text for invalid ones.
func ParseWorld(args []string) ([]pkg.Dependency, error) {
	var deps []pkg.Dependency
	for _, a := range args {
		d, err := pkg.ParseDependency(a)
		if err != nil || d.Op == pkg.Checksum && d.Version == "" {
			return nil, fmt.Errorf("'%s' is not a valid world dependency, format is name(@tag)([<>~=]version)", a)
		}
		deps = append(deps, d)
	}
	return deps, nil
}

// AddWorld merges new entries into an existing world like apk add (an entry for the same name
// replaces the old one in place).
func AddWorld(world, add []pkg.Dependency) []pkg.Dependency {
	out := append([]pkg.Dependency(nil), world...)
next:
	for _, a := range add {
		for i := range out {
			if out[i].Name == a.Name {
				out[i] = a
				continue next
			}
		}
		out = append(out, a)
	}
	return out
}
