package solver

import (
	"github.com/ramboot/ramboot/internal/apkinstall/pkg"
	"github.com/ramboot/ramboot/internal/apkinstall/version"
)

// Internal names of the solver flags.
const (
	flagUpgrade        = uint32(FlagUpgrade)
	flagAvailable      = uint32(FlagAvailable)
	flagReinstall      = uint32(FlagReinstall)
	flagLatest         = uint32(FlagLatest)
	flagIgnoreConflict = uint32(FlagIgnoreConflict)
	flagInstalled      = uint32(FlagInstalled)
	flagRemove         = uint32(FlagRemove)
)

// state is one solver run (apk's struct apk_solver_state).
type state struct {
	db             *db
	dirty          nameList
	unresolved     nameHeap
	selectable     nameHeap
	resolvenow     nameList
	errors         int
	flagsInherit   uint32
	pinningInherit uint32
	defaultRepos   uint64
	orderID        uint32
	ignoreConflict bool
	preupgrade     bool
	style          Style
	changes        []change
	world          []dep // the sorted world of a successful solve
}

// change is one changeset entry with the repository tags apk tracks for printing.
type change struct {
	old, new       *node
	oldTag, newTag int
	reinstall      bool
}

// provided is apk_dep_is_provided: does provider p satisfy d, declared by owner (nil = world)?
func provided(owner *node, d *pkg.Dependency, p provider) bool {
	if p.pkg == nil {
		return d.Conflict
	}
	if d.Conflict && owner == p.pkg {
		return true
	}
	var ok bool
	if d.Op == pkg.Checksum {
		ok = identity(p.pkg.p.Checksum) == identity(d.Version)
	} else {
		ok = version.Match(p.version, uint8(d.Op), d.Version)
	}
	return ok != d.Conflict
}

var providerNone = provider{}

func (s *state) markError(n *node) {
	if n == nil || n.err {
		return
	}
	n.err = true
	s.errors++
}

func (s *state) queueDirty(n *name) {
	if n.dirty.list != nil || n.locked || (n.requirers == 0 && !n.reevaluateIIF) {
		return
	}
	s.dirty.pushBack(n)
}

func queueResolvenow(n *name) bool {
	return n.reverseDepsDone && n.requirers > 0 && n.hasAutoSelectable && !n.hasOptions
}

// queued reports whether n waits in one of the selection queues.
func queued(n *name) bool { return n.unres.list != nil || n.heap != nil }

// unqueue takes n out of whichever selection queue holds it.
func unqueue(n *name) {
	if n.unres.list != nil {
		n.unres.list.remove(n)
	}
	if n.heap != nil {
		n.heap.remove(n)
	}
}

func (s *state) queueUnresolved(n *name, reevaluate bool) {
	if n.locked {
		return
	}
	if queued(n) {
		if n.resolvenow {
			return
		}
		if queueResolvenow(n) {
			n.resolvenow = true
		} else if !reevaluate {
			return
		}
		unqueue(n)
	} else {
		if n.requirers == 0 && !n.hasIIF && !n.iifNeeded {
			return
		}
		n.resolvenow = queueResolvenow(n)
	}
	if n.resolvenow {
		s.resolvenow.pushBack(n)
		return
	}
	if n.hasAutoSelectable {
		s.selectable.push(n)
	} else {
		s.unresolved.push(n)
	}
}

func (s *state) reevaluateReverseDeps(n *name) {
	for _, n0 := range n.rdepends {
		if !n0.seen {
			continue
		}
		n0.reevaluateDeps = true
		s.queueDirty(n0)
	}
}

func (s *state) reevaluateReverseInstallIf(n *name) {
	for _, n0 := range n.rinstallIf {
		if !n0.seen || n0.noIIF {
			continue
		}
		n0.reevaluateIIF = true
		s.queueDirty(n0)
	}
}

func (s *state) reevaluateReverseInstallIfPkg(p *node) {
	s.reevaluateReverseInstallIf(p.name)
	for _, d := range p.provides {
		s.reevaluateReverseInstallIf(d.name)
	}
}

func (s *state) disqualify(p *node) {
	p.selectable = false
	s.reevaluateReverseDeps(p.name)
	for _, d := range p.provides {
		s.reevaluateReverseDeps(d.name)
	}
	s.reevaluateReverseInstallIfPkg(p)
}

func (s *state) dependencySatisfiable(owner *node, d *dep) bool {
	n := d.name
	if d.d.Conflict && s.ignoreConflict {
		return true
	}
	if n.locked {
		return provided(owner, &d.d, n.chosen)
	}
	if n.requirers == 0 && provided(owner, &d.d, providerNone) {
		return true
	}
	for _, p := range n.providers {
		if p.pkg.selectable && provided(owner, &d.d, p) {
			return true
		}
	}
	return false
}

func (s *state) discoverName(n *name) {
	if n.seen {
		return
	}
	db := s.db
	n.seen = true
	n.noIIF = true
	numVirtual := 0
	for _, p := range n.providers {
		pk := p.pkg
		if !pk.seen {
			pk.seen = true
			pk.pinningAllowed = defaultPinningMask
			pk.pinningPreferred = defaultPinningMask
			pk.available = pk.repos&db.repoBits != 0
			pk.selectable = !pk.uninstallable &&
				(pk.available || pk.p.InstalledSize == 0 || pk.installed)
			pk.iifFailed = len(pk.installIf) == 0 ||
				(s.flagsInherit&flagAvailable != 0 && !pk.available)
			repos := db.pkgRepos(pk)
			pk.tagPreferred = pk.p.InstalledSize == 0 || repos&s.defaultRepos != 0
			pk.tagOK = pk.tagPreferred || pk.installed
			for i := range pk.depends {
				s.discoverName(pk.depends[i].name)
			}
		}
		n.noIIF = n.noIIF && pk.iifFailed
		if pk.name != n {
			numVirtual++
		}
	}
	for _, n0 := range n.rinstallIf {
		s.discoverName(n0)
	}
	for _, p := range n.providers {
		for _, n0 := range p.pkg.name.rinstallIf {
			s.discoverName(n0)
		}
		for i := range p.pkg.provides {
			s.discoverName(p.pkg.provides[i].name)
		}
	}
	// Names carrying solver flags (apk add -u NAME, apk fix NAME) are selected first, real
	// names before purely virtual ones, then the most recently discovered first. (Upstream's
	// vectors basic17/basic18/selfupgrade1 require flagged names first.)
	var order uint32
	if n.solverFlagsSet {
		order |= 1 << 31
	}
	if len(n.providers) != numVirtual {
		order |= 1 << 30
	}
	s.orderID++
	n.orderID = order | s.orderID
	for _, p := range n.providers {
		for i := range p.pkg.installIf {
			s.discoverName(p.pkg.installIf[i].name)
		}
	}
}

func (s *state) nameRequirersChanged(n *name) {
	s.queueUnresolved(n, false)
	s.reevaluateReverseInstallIf(n)
	s.queueDirty(n)
}

func (s *state) inheritPinningAndFlags(p, parent *node) {
	repos := s.db.pkgRepos(p)
	if parent != nil {
		p.flags |= parent.flagsInheritable
		p.flagsInheritable |= parent.flagsInheritable
		p.pinningAllowed |= parent.pinningAllowed
	} else {
		p.flags |= s.flagsInherit
		p.flagsInheritable |= s.flagsInherit
		p.pinningAllowed |= s.pinningInherit
		p.pinningPreferred = s.pinningInherit
		p.tagPreferred = repos&s.db.pinningRepos(p.pinningPreferred) != 0
	}
	if repos&s.db.pinningRepos(p.pinningAllowed) != 0 {
		p.tagOK = true
	}
}

func (s *state) applyConstraint(parent *node, d *dep) {
	n := d.name
	if d.d.Conflict && s.ignoreConflict {
		return
	}
	if !d.d.Conflict {
		n.requirers++
		if n.requirers == 1 {
			s.nameRequirersChanged(n)
		}
	}
	for _, p0 := range n.providers {
		pk := p0.pkg
		ok := provided(parent, &d.d, p0)
		if !ok {
			pk.conflicts++
		}
		if pk.selectable && pk.conflicts > 0 {
			s.disqualify(pk)
		}
		if ok {
			s.inheritPinningAndFlags(pk, parent)
		}
	}
}

func (s *state) excludeNonProviders(n, mustProvide *name, skipVirtuals bool) {
	if n == mustProvide || s.ignoreConflict {
		return
	}
next:
	for _, p := range n.providers {
		if p.pkg.name == mustProvide || !p.pkg.selectable || (skipVirtuals && p.version == "") {
			continue
		}
		for _, d := range p.pkg.provides {
			if d.name == mustProvide || (skipVirtuals && d.d.Version == "") {
				continue next
			}
		}
		s.disqualify(p.pkg)
	}
}

func mergeIndex(idx *int, numOptions int) bool {
	if *idx != numOptions {
		return false
	}
	*idx = numOptions + 1
	return true
}

func mergeIndexComplete(idx *int, numOptions int) bool {
	ret := *idx == numOptions
	*idx = 0
	return ret
}

// autoSelectable: a virtual (unversioned) provider is only picked automatically when it has a
// provider priority or its own name is required.
func autoSelectable(p provider) bool {
	return p.version != "" || p.pkg.p.ProviderPriority != 0 || p.pkg.name.requirers > 0
}

func (s *state) reconsiderName(n *name) {
	reevalDeps, reevalIIF := n.reevaluateDeps, n.reevaluateIIF
	n.reevaluateDeps, n.reevaluateIIF = false, false

	var first *node
	numOptions, numTagNotOK := 0, 0
	hasIIF, noIIF := false, true
	hasAuto := false
	for _, p := range n.providers {
		pk := p.pkg
		pk.depsMerged = false
		if reevalDeps {
			if !pk.selectable {
				continue
			}
			for i := range pk.depends {
				if !s.dependencySatisfiable(pk, &pk.depends[i]) {
					s.disqualify(pk)
					break
				}
			}
		}
		if !pk.selectable {
			continue
		}
		if reevalIIF && !pk.iifTriggered && !pk.iifFailed {
			pk.iifTriggered = true
			pk.iifFailed = false
			for i := range pk.installIf {
				d := &pk.installIf[i]
				if !d.name.locked {
					if d.d.Conflict {
						d.name.iifNeeded = true
						s.queueUnresolved(d.name, false)
					}
					pk.iifTriggered, pk.iifFailed = false, false
					break
				}
				if !provided(pk, &d.d, d.name.chosen) {
					pk.iifTriggered, pk.iifFailed = false, true
					break
				}
			}
		}
		if reevalIIF && pk.iifTriggered {
			for i := range pk.installIf {
				s.inheritPinningAndFlags(pk, pk.installIf[i].name.chosen.pkg)
			}
		}
		hasIIF = hasIIF || pk.iifTriggered
		noIIF = noIIF && pk.iifFailed
		hasAuto = hasAuto || pk.iifTriggered

		if n.requirers == 0 {
			continue
		}
		pk.depsMerged = true
		if first == nil {
			first = pk
		}
		for i := range pk.depends {
			if !pk.depends[i].d.Conflict {
				mergeIndex(&pk.depends[i].name.mergeDepends, numOptions)
			}
		}
		if mergeIndex(&pk.name.mergeProvides, numOptions) && p.version == "" {
			pk.name.hasVirtualProvides = true
		}
		for i := range pk.provides {
			d := &pk.provides[i]
			if mergeIndex(&d.name.mergeProvides, numOptions) && d.d.Version == "" {
				d.name.hasVirtualProvides = true
			}
		}
		if !pk.tagOK {
			numTagNotOK++
		}
		numOptions++
		if !hasAuto && autoSelectable(p) {
			hasAuto = true
		}
	}
	n.hasOptions = numOptions > 1 || numTagNotOK > 0
	n.hasIIF = hasIIF
	n.noIIF = noIIF
	reevaluate := false
	if hasAuto != n.hasAutoSelectable {
		n.hasAutoSelectable = hasAuto
		reevaluate = true
	}

	if first != nil {
		pk := first
		for _, p := range n.providers {
			p.pkg.depsUsed = p.pkg.depsMerged
		}
		if numOptions == 1 {
			for i := range pk.depends {
				d := &pk.depends[i]
				if mergeIndexComplete(&d.name.mergeDepends, numOptions) {
					s.applyConstraint(pk, d)
				}
			}
		} else {
			for i := range pk.depends {
				n0 := pk.depends[i].name
				if mergeIndexComplete(&n0.mergeDepends, numOptions) && n0.requirers == 0 {
					// a dependency name common to all candidates
					n0.requirers++
					s.nameRequirersChanged(n0)
					for _, p := range n0.providers {
						s.inheritPinningAndFlags(p.pkg, pk)
					}
				}
			}
		}
		// provides transitivity
		if mergeIndexComplete(&pk.name.mergeProvides, numOptions) {
			s.excludeNonProviders(pk.name, n, pk.name.hasVirtualProvides)
		}
		for i := range pk.provides {
			d := &pk.provides[i]
			if mergeIndexComplete(&d.name.mergeProvides, numOptions) {
				s.excludeNonProviders(d.name, n, d.name.hasVirtualProvides)
			}
		}
		pk.name.hasVirtualProvides = false
		for i := range pk.provides {
			pk.provides[i].name.hasVirtualProvides = false
		}
	}

	n.reverseDepsDone = true
	for _, n0 := range n.rdepends {
		if n0.seen && !n0.locked {
			n.reverseDepsDone = false
			break
		}
	}
	s.queueUnresolved(n, reevaluate)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// compareProviders is apk's compare_providers: > 0 when pA is the better choice.
func (s *state) compareProviders(pA, pB provider) int {
	a, b := pA.pkg, pB.pkg
	if a == nil || b == nil {
		return b2i(a != nil) - b2i(b != nil)
	}
	flags := a.flags | b.flags
	if flags&flagLatest != 0 && a.pinningAllowed == defaultPinningMask && b.pinningAllowed == defaultPinningMask {
		if r := b2i(a.tagOK) - b2i(b.tagOK); r != 0 {
			return r
		}
		if flags&flagAvailable != 0 {
			if r := b2i(a.available) - b2i(b.available); r != 0 {
				return r
			}
		} else if flags&flagReinstall != 0 {
			if r := b2i(a.selectable) - b2i(b.selectable); r != 0 {
				return r
			}
		}
	} else {
		if r := b2i(a.selectable) - b2i(b.selectable); r != 0 {
			return r
		}
		if r := b2i(a.depsUsed) - b2i(b.depsUsed); r != 0 {
			return r
		}
		if r := b.conflicts - a.conflicts; r != 0 {
			return r
		}
		if (s.preupgrade && flags&flagUpgrade == 0) || flags&flagInstalled != 0 {
			if r := b2i(a.installed) - b2i(b.installed); r != 0 {
				return r
			}
		}
		if r := b2i(a.tagOK) - b2i(b.tagOK); r != 0 {
			return r
		}
		if flags&flagAvailable != 0 {
			if r := b2i(a.available) - b2i(b.available); r != 0 {
				return r
			}
		}
		if r := b2i(a.tagPreferred) - b2i(b.tagPreferred); r != 0 {
			return r
		}
		if flags&(flagRemove|flagUpgrade) == 0 &&
			(a.name == b.name || pA.version != "" || pB.version != "") {
			if r := b2i(a.installed) - b2i(b.installed); r != 0 {
				return r
			}
		}
	}
	switch version.CompareMask(pA.version, pB.version, false) {
	case version.Less:
		return -1
	case version.Greater:
		return 1
	}
	if a.name == b.name {
		switch version.CompareMask(a.p.Version, b.p.Version, false) {
		case version.Less:
			return -1
		case version.Greater:
			return 1
		}
	}
	if r := a.p.ProviderPriority - b.p.ProviderPriority; r != 0 {
		return r
	}
	if flags&flagRemove == 0 {
		if r := b2i(a.installed) - b2i(b.installed); r != 0 {
			return r
		}
	}
	if r := b2i(a.selectable) - b2i(b.selectable); r != 0 {
		return r
	}
	return ffs(b.repos) - ffs(a.repos)
}

func (s *state) assignName(n *name, p provider) {
	if n.locked {
		// two unversioned provides (or "nothing") of one name may coexist
		if p.version == "" && n.chosen.version == "" {
			return
		}
		if s.ignoreConflict {
			return
		}
		s.markError(p.pkg)
		s.markError(n.chosen.pkg)
		return
	}
	n.locked = true
	n.chosen = p
	unqueue(n)
	if n.dirty.list != nil {
		n.dirty.list.remove(n)
	}
	if p.pkg != nil && n.requirers == 0 && p.pkg.iifTriggered {
		for i := range p.pkg.installIf {
			d := &p.pkg.installIf[i]
			if !d.name.locked {
				s.applyConstraint(p.pkg, d)
			}
		}
	}
	if !s.ignoreConflict {
		for _, p0 := range n.providers {
			if p0.pkg == p.pkg {
				continue
			}
			if p.version == "" && p0.version == "" {
				continue
			}
			s.disqualify(p0.pkg)
		}
	}
	s.reevaluateReverseDeps(n)
	if p.pkg != nil {
		s.reevaluateReverseInstallIfPkg(p.pkg)
	} else {
		s.reevaluateReverseInstallIf(n)
	}
}

func (s *state) selectPackage(n *name) {
	var chosen provider
	if n.requirers > 0 || n.hasIIF {
		for _, p := range n.providers {
			if n.requirers == 0 && (!p.pkg.iifTriggered || !p.pkg.tagOK || !p.pkg.selectable) {
				continue
			}
			if !autoSelectable(p) {
				continue
			}
			if s.compareProviders(p, chosen) > 0 {
				chosen = p
			}
		}
	}
	pk := chosen.pkg
	if pk == nil {
		s.assignName(n, providerNone)
		if n.requirers > 0 {
			s.errors++
		}
		return
	}
	if !pk.selectable || !pk.tagOK {
		s.markError(pk)
	}
	s.assignName(pk.name, provider{pkg: pk, version: pk.p.Version})
	for i := range pk.provides {
		d := &pk.provides[i]
		s.assignName(d.name, provider{pkg: pk, version: d.d.Version})
	}
	for i := range pk.depends {
		s.applyConstraint(pk, &pk.depends[i])
	}
}

func (s *state) dequeueNext() *name {
	if n := s.resolvenow.popFront(); n != nil {
		return n
	}
	if n := s.selectable.pop(); n != nil {
		return n
	}
	return s.unresolved.pop()
}
