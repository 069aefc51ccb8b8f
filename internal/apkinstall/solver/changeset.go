package solver

// Changeset generation (apk's generate_changeset): a depth-first walk from the sorted world,
// recording each package after its dependencies (post-order), then install_if packages whose
// conditions became complete, then removals of installed packages nothing needs any more.

func (s *state) recordChange(old, nw *node) {
	c := change{old: old, new: nw}
	if old != nil {
		c.oldTag = old.installedTag
	}
	if nw != nil {
		c.newTag = s.db.tagFor(nw.pinningAllowed, s.db.pkgRepos(nw))
		c.reinstall = nw.flags&flagReinstall != 0
	}
	s.changes = append(s.changes, c)
}

func (s *state) csetTrackDepsAdded(p *node) {
	for _, d := range p.depends {
		if d.d.Conflict || d.name.installedName == nil {
			continue
		}
		d.name.installedName.requirers++
	}
}

func (s *state) csetTrackDepsRemoved(p *node) {
	for _, d := range p.depends {
		if d.d.Conflict || d.name.installedName == nil {
			continue
		}
		d.name.installedName.requirers--
		if d.name.installedName.requirers > 0 {
			continue
		}
		if p0 := d.name.installedPkg; p0 != nil {
			s.csetGenNameRemove(p0)
		}
	}
}

func (s *state) csetCheckRemovalByDeps(p *node) {
	// An orphaned name may have no requirers because another provider now satisfies it; that
	// is handled later as an adjustment, so only remove when nothing was chosen for the name.
	if p.name.requirers == 0 && p.name.chosen.pkg == nil {
		s.csetGenNameRemove(p)
	}
}

func (s *state) csetCheckInstallByIIF(n *name) {
	p := n.chosen.pkg
	if p == nil || !n.seen || n.changesetProcessed {
		return
	}
	for i := range p.installIf {
		d := &p.installIf[i]
		if !d.d.Conflict && !d.name.changesetProcessed {
			return
		}
		if !provided(p, &d.d, d.name.chosen) {
			return
		}
	}
	s.csetGenNameChange(n)
}

func (s *state) csetCheckRemovalByIIF(n *name) {
	p := n.installedPkg
	if p == nil || n.chosen.pkg != nil || n.changesetProcessed || n.changesetRemoved {
		return
	}
	for _, d := range p.installIf {
		if d.name.changesetRemoved && d.name.chosen.pkg == nil {
			s.csetCheckRemovalByDeps(p)
			return
		}
	}
}

func (s *state) csetCheckByReverseIIF(p *node, cb func(*name)) {
	if p == nil {
		return
	}
	for _, n := range p.name.rinstallIf {
		cb(n)
	}
	for _, d := range p.provides {
		for _, n := range d.name.rinstallIf {
			cb(n)
		}
	}
}

func (s *state) csetGenNamePreprocess(n *name) {
	if n.changesetProcessed {
		return
	}
	n.changesetProcessed = true
	// remove the package that provided this name before if another name provides it now
	if n.installedPkg != nil && (n.chosen.pkg == nil || n.chosen.pkg.name != n) {
		s.csetGenNameRemove(n.installedPkg)
	}
	// remove any installed provider of this name that is due to be deleted
	for _, p := range n.providers {
		n0 := p.pkg.name
		if n0.installedPkg == p.pkg && n0.chosen.pkg == nil {
			s.csetGenNameRemove(p.pkg)
		}
	}
}

func (s *state) csetGenNameChange(n *name) {
	if n.changesetProcessed {
		return
	}
	s.csetGenNamePreprocess(n)
	p := n.chosen.pkg
	if p == nil || p.inChangeset {
		return
	}
	p.inChangeset = true
	s.csetGenNamePreprocess(p.name)
	for _, d := range p.provides {
		s.csetGenNamePreprocess(d.name)
	}
	old := p.name.installedPkg
	s.csetCheckByReverseIIF(old, s.csetCheckRemovalByIIF)
	for i := range p.depends {
		s.csetGenDep(p, &p.depends[i])
	}
	s.recordChange(old, p)
	s.csetCheckByReverseIIF(p, s.csetCheckInstallByIIF)
	s.csetTrackDepsAdded(p)
	if old != nil {
		s.csetTrackDepsRemoved(old)
	}
}

func (s *state) csetGenNameRemove(p *node) {
	n := p.name
	if p.inChangeset || (n.chosen.pkg != nil && n.chosen.pkg.name == n) {
		return
	}
	n.changesetRemoved = true
	p.inChangeset = true
	// installed packages that depend on the removed one go too
	s.foreachReverseDependency(p, func(p0 *node, _ *dep) bool { return p0.installed }, matchSatisfies, false,
		func(p0 *node, _ *dep) { s.csetGenNameRemove(p0) })
	s.csetCheckByReverseIIF(p, s.csetCheckRemovalByIIF)
	s.recordChange(p, nil)
	s.csetTrackDepsRemoved(p)
}

func (s *state) csetGenDep(parent *node, d *dep) {
	if d.d.Conflict && s.ignoreConflict {
		return
	}
	n := d.name
	p := n.chosen.pkg
	if !provided(parent, &d.d, n.chosen) {
		s.markError(parent)
	}
	s.csetGenNameChange(n)
	if p != nil && p.err {
		s.markError(parent)
	}
}

func (s *state) generateChangeset(world []dep) {
	s.changes = s.changes[:0]
	for _, n := range s.db.nameOrder {
		n.installedPkg = nil
		n.installedName = nil
		n.requirers = 0
	}
	for _, p := range s.db.installed {
		p.name.installedPkg = p
		p.name.installedName = p.name
		for _, d := range p.provides {
			if d.d.Version != "" {
				d.name.installedName = p.name
			}
		}
	}
	for _, p := range s.db.installed {
		s.csetTrackDepsAdded(p)
	}
	for _, p := range s.db.installed {
		s.csetCheckRemovalByDeps(p)
	}
	for i := range world {
		s.csetGenDep(nil, &world[i])
	}
	for _, p := range s.db.installed {
		s.csetGenNameChange(p.name)
	}
}

// Dependency analysis results (apk_dep_analyze).
const (
	matchIrrelevant = 1 << iota
	matchSatisfies
	matchConflicts
)

// analyze is apk_dep_analyze: how does package p relate to dependency d declared by owner?
func analyze(owner *node, d *dep, p *node) int {
	if p == nil {
		return matchIrrelevant
	}
	if d.name == p.name {
		// apk_dep_is_materialized: no "a conflict is satisfied by its declarer" rule here
		if provided(nil, &d.d, provider{pkg: p, version: p.p.Version}) {
			return matchSatisfies
		}
		return matchConflicts
	}
	for _, pr := range p.provides {
		if pr.name != d.name {
			continue
		}
		if provided(owner, &d.d, provider{pkg: p, version: pr.d.Version}) {
			return matchSatisfies
		}
		return matchConflicts
	}
	return matchIrrelevant
}

// foreachReverseDependency calls cb for each (package, dependency) among the providers of the
// names depending on p (or on what p provides) whose dependency relates to p as match says.
// filter selects candidate packages; with dedup each package is visited once per call (apk's
// genid), otherwise once per name it is reached through.
func (s *state) foreachReverseDependency(p *node, filter func(*node, *dep) bool, match int, dedup bool, cb func(*node, *dep)) {
	s.db.genID++
	gen := s.db.genID
	visit := func(rdeps []*name) {
		for _, n0 := range rdeps {
			for _, pr := range n0.providers {
				p0 := pr.pkg
				if !filter(p0, nil) {
					continue
				}
				if dedup {
					if p0.foreachGen == gen {
						continue
					}
					p0.foreachGen = gen
				}
				for i := range p0.depends {
					if analyze(p0, &p0.depends[i], p)&match != 0 {
						cb(p0, &p0.depends[i])
					}
				}
			}
		}
	}
	visit(p.name.rdepends)
	for _, d := range p.provides {
		visit(d.name.rdepends)
	}
}
