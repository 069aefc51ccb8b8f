package solver

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/ramboot/ramboot/internal/apkinstall/pkg"
	"github.com/ramboot/ramboot/internal/apkinstall/version"
	"github.com/ramboot/ramboot/internal/testdata"
)

// vector is one upstream apk-tools solver test (test/solver/*.test).
type vector struct {
	args      []string
	repos     []Repository
	installed []*pkg.Package
	world     []string
	cache     string
	expect    string
}

func loadIndexFile(t *testing.T, path string) []*pkg.Package {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pkgs, err := pkg.ParseIndex(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return pkgs
}

func parseVector(t *testing.T, path string) *vector {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(path)
	v := &vector{}
	lines := strings.SplitAfter(string(raw), "\n")
	for i, line := range lines {
		l := strings.TrimRight(line, "\n")
		if l == "@EXPECT" {
			v.expect = strings.Join(lines[i+1:], "")
			break
		}
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "@ARGS":
			v.args = append(v.args, f[1:]...)
		case "@REPO":
			tag, file := "", f[1]
			if strings.HasPrefix(file, "@") {
				tag, file = strings.TrimPrefix(f[1], "@"), f[2]
			}
			v.repos = append(v.repos, Repository{Tag: tag, Packages: loadIndexFile(t, filepath.Join(dir, file))})
		case "@INSTALLED":
			v.installed = loadIndexFile(t, filepath.Join(dir, f[1]))
		case "@WORLD":
			v.world = append(v.world, f[1:]...)
		case "@CACHE":
			// etc/apk/cache/installed: packages present in the local cache. ramboot has no
			// cache; they are simply locally available packages, i.e. one more repository.
			v.cache = f[1]
			v.repos = append(v.repos, Repository{Packages: loadIndexFile(t, filepath.Join(dir, f[1]))})
		default:
			t.Fatalf("%s: unknown directive %q", path, l)
		}
	}
	return v
}

// runApk emulates `apk --simulate APPLET ARGS` (add, upgrade, del, fix) on the vector the way
// apk-tools' applets drive the solver, and returns apk's output.
func runApk(v *vector) (string, error) {
	var out strings.Builder
	brokenWorld := false
	verbose := false
	applet := ""
	var args []string
	var virtual string
	var flags Flags  // applet solver flags (-u, -l, -a)
	depends := false // fix --depends
	prune, ignore, preupgradeOnly := false, false, false
	preDeps := []string{"apk-tools"}
	for i := 0; i < len(v.args); i++ {
		a := v.args[i]
		switch {
		case a == "--force-broken-world":
			brokenWorld = true
		case a == "-v" || a == "--verbose":
			verbose = true
		case a == "--no-network" && (len(v.repos) == 0 || v.cache != ""):
			// nothing to mask: the vector has no remote repositories
		case a == "--root-tmpfs=yes" || a == "--root-tmpfs=no":
			// only decides where apk keeps its cache
		case applet == "" && (a == "add" || a == "upgrade" || a == "del" || a == "fix"):
			applet = a
		case a == "-t" || a == "--virtual":
			i++
			virtual = v.args[i]
		case a == "-u" || a == "--upgrade":
			flags |= FlagUpgrade
		case a == "-l" || a == "--latest":
			flags |= FlagLatest
		case a == "-a" || a == "--available":
			flags |= FlagAvailable
		case a == "-d" || a == "--depends":
			depends = true
		case a == "--prune":
			prune = true
		case a == "--ignore":
			ignore = true
		case a == "--self-upgrade-only" || a == "--preupgrade-only":
			preupgradeOnly = true
		case a == "--preupgrade-depends":
			i++
			preDeps = append(preDeps, v.args[i])
		case strings.HasPrefix(a, "-"):
			return "", fmt.Errorf("unsupported option %s", a)
		default:
			args = append(args, a)
		}
	}
	world, err := ParseWorld(v.world)
	if err != nil {
		return "", err
	}
	req := Request{
		World:       world,
		Repos:       v.repos,
		Installed:   v.installed,
		BrokenWorld: brokenWorld,
		Arch:        []string{"x86_64"},
		NameFlags:   map[string]NameFlags{},
		Style:       StyleAPK3,
	}
	switch applet {
	case "add":
		add, err := ParseWorld(args)
		if err != nil {
			return "ERROR: " + err.Error() + "\n", nil
		}
		if virtual != "" {
			// apk add -t NAME=VER: an empty meta package depending on the arguments.
			vd, err := pkg.ParseDependency(virtual)
			if err != nil || vd.Conflict || vd.Op != pkg.Equal {
				return "ERROR: " + virtual + ": bad package specifier\n", nil
			}
			if len(add) == 0 {
				out.WriteString("WARNING: creating empty virtual package\n")
			}
			vp := &pkg.Package{Name: vd.Name, Version: vd.Version, Checksum: "virtual", Depends: add}
			req.Repos = append([]Repository{{Packages: []*pkg.Package{vp}}}, req.Repos...)
			add = []pkg.Dependency{vd}
		}
		req.World = AddWorld(world, add)
		for _, d := range add {
			req.NameFlags[d.Name] = NameFlags{flags, flags}
		}
	case "upgrade":
		flags |= FlagUpgrade
		if preupgradeOnly {
			return preupgrade(v, req, flags, preDeps)
		}
		if flags&FlagAvailable != 0 {
			for i := range req.World {
				if req.World[i].Op == pkg.Checksum {
					req.World[i].Op, req.World[i].Version = pkg.Any, ""
				}
			}
		}
		if prune {
			var kept []pkg.Dependency
			for _, d := range req.World {
				if inRepo(v, d.Name) {
					kept = append(kept, d)
				}
			}
			req.World = kept
		}
		if len(args) > 0 {
			if !ignore {
				flags &^= FlagUpgrade
			}
			for _, a := range args {
				if ignore {
					req.NameFlags[a] = NameFlags{Flags: FlagInstalled}
				} else {
					req.NameFlags[a] = NameFlags{Flags: FlagUpgrade}
				}
			}
		}
		req.Flags = flags
	case "del":
		for _, a := range args {
			req.World = delWorld(req.World, a)
			req.NameFlags[a] = NameFlags{Flags: FlagRemove}
		}
	case "fix":
		if flags == 0 {
			flags = FlagReinstall
		}
		for _, a := range args {
			nf := NameFlags{Flags: flags}
			if depends {
				nf.Inheritable = flags
			}
			req.NameFlags[a] = nf
		}
	default:
		return "", fmt.Errorf("unsupported applet in %q", v.args)
	}
	if verbose {
		return solveVerbose(v, req)
	}
	return solveAndPrint(&out, req, func(sol *Solution) {
		if applet == "del" {
			out.WriteString(sol.NotRemovedReport(args))
		}
	})
}

// solveVerbose is apk -v's commit output: the list of installed packages no repository offers,
// the changes, and the long OK line (no files or directories exist in a simulated root).
func solveVerbose(v *vector, req Request) (string, error) {
	sol, err := Solve(req)
	if err != nil {
		return "", err
	}
	var all []*pkg.Package
	for _, c := range sol.Changes {
		if c.New != nil {
			all = append(all, c.New)
		}
	}
	all = append(all, sol.Unchanged...)
	sort.SliceStable(all, func(a, b int) bool { return nameLess(all[a].Name, all[b].Name) })
	var ind indenter
	header := false
	for _, p := range all {
		if inRepo(v, p.Name) {
			continue
		}
		if !header {
			ind.group(2, "NOTE: Consider running apk upgrade with --prune and/or --available.\n"+
				"The following packages are no longer available from a repository:\n")
			header = true
		}
		ind.print(p.Name)
	}
	ind.end()
	out := ind.b.String()
	for i, c := range sol.Changes {
		out += c.Line(i+1, len(sol.Changes), StyleAPK3) + "\n"
	}
	return out + fmt.Sprintf("OK: %d packages, 0 dirs, 0 files, %s\n", sol.InstalledPackages, HumanSize(sol.InstalledBytes)), nil
}

func solveAndPrint(out *strings.Builder, req Request, before func(*Solution)) (string, error) {
	sol, err := Solve(req)
	var serr *Error
	switch {
	case errors.As(err, &serr):
		out.WriteString(serr.Report)
		return out.String(), nil
	case err != nil:
		fmt.Fprintf(out, "ERROR: %v\n", err)
		return out.String(), nil
	}
	before(sol)
	if err := sol.WriteSimulation(out, StyleAPK3); err != nil {
		return "", err
	}
	return out.String(), nil
}

// inRepo reports whether a repository package provides name (apk upgrade --prune keeps those).
func inRepo(v *vector, name string) bool {
	for _, r := range v.repos {
		for _, p := range r.Packages {
			if p.Name == name {
				return true
			}
			for _, d := range p.Provides {
				if d.Name == name {
					return true
				}
			}
		}
	}
	return false
}

// delWorld drops the world entry of name (apk del without -r).
func delWorld(world []pkg.Dependency, name string) []pkg.Dependency {
	var out []pkg.Dependency
	for _, d := range world {
		if d.Name != name {
			out = append(out, d)
		}
	}
	return out
}

// preupgrade is apk upgrade --preupgrade-only: upgrade apk-tools (and --preupgrade-depends)
// first, preferring installed versions for everything else.
func preupgrade(v *vector, req Request, flags Flags, depArgs []string) (string, error) {
	deps, err := ParseWorld(nil)
	if err != nil {
		return "", err
	}
	for _, a := range depArgs {
		d, err := pkg.ParseDependency(a)
		if err != nil {
			return "", err
		}
		deps = AddWorld(deps, []pkg.Dependency{d})
	}
	found := false
	for _, d := range deps {
		var inst *pkg.Package
		for _, p := range v.installed {
			if p.Name == d.Name {
				inst = p
			}
		}
		// apk_dep_is_materialized: the installed package must match the dependency
		if inst == nil && !d.Conflict || inst != nil && d.MatchVersion(inst.Version) == d.Conflict {
			continue
		}
		if inst == nil {
			continue
		}
		for _, r := range v.repos {
			for _, p := range r.Packages {
				if p.Name == d.Name && version.Compare(p.Version, inst.Version) > 0 {
					req.NameFlags[d.Name] = NameFlags{Flags: flags}
					found = true
				}
			}
		}
	}
	if !found {
		return "", nil
	}
	req.Preupgrade = true
	var out strings.Builder
	sol, err := Solve(req)
	if err != nil || len(sol.Changes) == 0 {
		return "", nil
	}
	out.WriteString("Preupgrading:\n")
	if err := sol.WriteSimulation(&out, StyleAPK3); err != nil {
		return "", err
	}
	return out.String(), nil
}

// TestUpstreamVectors runs every apk-tools solver vector (apk 3.0.6 test/solver/*.test) through
// an emulation of the applet that drives the solver and compares the output byte for byte. All
// must pass; the `add` cases without @INSTALLED are the initramfs case and are counted apart.
func TestUpstreamVectors(t *testing.T) {
	dir := testdata.Path(t, "apk-tools-tests", "solver")
	files, err := filepath.Glob(filepath.Join(dir, "*.test"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no solver vectors in %s: %v", dir, err)
	}
	var passed, initramfs, initramfsPassed int
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".test")
		v := parseVector(t, file)
		isAdd := false
		for _, a := range v.args {
			if a == "add" {
				isAdd = true
			}
		}
		boot := isAdd && v.installed == nil
		if boot {
			initramfs++
		}
		t.Run(name, func(t *testing.T) {
			got, err := runApk(v)
			if err != nil {
				t.Fatalf("apk %s: %v", strings.Join(v.args, " "), err)
			}
			if got != v.expect {
				t.Fatalf("apk %s:\ngot:\n%s\nwant:\n%s", strings.Join(v.args, " "), got, v.expect)
			}
			passed++
			if boot {
				initramfsPassed++
			}
		})
	}
	t.Logf("solver vectors: %d/%d passed; add without @INSTALLED: %d/%d", passed, len(files), initramfsPassed, initramfs)
	if initramfs < 45 {
		t.Errorf("only %d add vectors without @INSTALLED found, want >= 45", initramfs)
	}
}
