package apkinstall

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/ramboot/ramboot/internal/apkinstall/db"
	"github.com/ramboot/ramboot/internal/apkinstall/extract"
	"github.com/ramboot/ramboot/internal/apkinstall/pkg"
	"github.com/ramboot/ramboot/internal/apkinstall/pkgstream"
	"github.com/ramboot/ramboot/internal/apkinstall/solver"
)

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
