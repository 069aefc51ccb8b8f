package solver

import (
	"sort"
	"strings"

	"github.com/ramboot/ramboot/internal/apkinstall/pkg"
	"github.com/ramboot/ramboot/internal/apkinstall/version"
)

// The error report mirrors apk's apk_solver_print_errors byte for byte: labelled, indented
// blocks wrapped at 50 columns (apk's width when output is not a terminal).

const reportWidth = 50

const (
	statePresent     = 0x80000000
	stateMissing     = 0x40000000
	stateVirtualOnly = 0x20000000
	stateInstallIf   = 0x10000000
	stateCountMask   = 0x0000ffff
)

// indenter is apk's struct apk_indent.
type indenter struct {
	b         strings.Builder
	x, indent int
}

func (i *indenter) line(s string) {
	i.b.WriteString(s)
	i.x, i.indent = 0, 0
}

func (i *indenter) group(indent int, s string) {
	i.b.WriteString(s)
	i.x = len(s)
	if indent != 0 {
		i.indent = indent
	} else {
		i.indent = i.x + 1
	}
	if strings.HasSuffix(s, "\n") {
		i.x = 0
	}
}

func (i *indenter) end() {
	if i.x != 0 {
		i.b.WriteString("\n")
		i.x, i.indent = 0, 0
	}
}

func (i *indenter) print(s string) {
	switch {
	case i.x <= i.indent:
		i.b.WriteString(strings.Repeat(" ", i.indent-i.x) + s)
		i.x += i.indent - i.x + len(s)
	case i.x+len(s)+1 >= reportWidth:
		i.b.WriteString("\n" + strings.Repeat(" ", i.indent) + s)
		i.x = i.indent + len(s)
	default:
		i.b.WriteString(" " + s)
		i.x += 1 + len(s)
	}
}

func (i *indenter) words(s string) {
	for _, w := range strings.Fields(s) {
		i.print(w)
	}
}

type printState struct {
	s         *state
	world     []dep
	worldTags []int
	i         indenter
	label     string
	hasLabel  bool
	numLabels int
}

func (ps *printState) labelStart(text string) {
	if ps.hasLabel {
		ps.i.line("  " + ps.label + ":\n")
		ps.hasLabel = false
		ps.numLabels++
	}
	if ps.i.x == 0 {
		ps.i.group(0, "    "+text)
	}
}

func (ps *printState) labelEnd() { ps.i.end() }

func (ps *printState) setLabel(l string) { ps.label, ps.hasLabel = l, true }

// depText is apk's DEP_FMT: [!]name[op version] (no tag).
func depText(d *pkg.Dependency) string {
	var b strings.Builder
	if d.Conflict {
		b.WriteByte('!')
	}
	b.WriteString(d.Name)
	if d.Version != "" {
		b.WriteString(version.OpString(uint8(d.Op)))
		b.WriteString(d.Version)
	}
	return b.String()
}

func pkgText(n *node) string { return n.p.Name + "-" + n.p.Version }

func (ps *printState) worldText(i int) string {
	return "world[" + depText(&ps.world[i].d) + ps.s.db.tags[ps.worldTags[i]].name + "]"
}

func (ps *printState) pinningErrors(p *node, tag int) {
	d := ps.s.db
	if p.installed {
		return
	}
	if p.repos&d.repoBits == 0 {
		ps.labelStart("masked in:")
		ps.i.print("--no-network")
	} else {
		if p.repos&d.pinningRepos(defaultPinningMask|1<<uint(tag)) != 0 {
			return
		}
		for _, t := range d.tags {
			if p.repos&t.allowed != 0 {
				ps.labelStart("masked in:")
				ps.i.print(t.name)
			}
		}
	}
	ps.labelEnd()
}

func (ps *printState) conflicts(p *node) {
	for _, pr := range p.name.providers {
		if pr.pkg == p || !pr.pkg.marked {
			continue
		}
		ps.labelStart("conflicts:")
		ps.i.print(pkgText(pr.pkg))
	}
	for _, d := range p.provides {
		once := true
		for _, pr := range d.name.providers {
			if !pr.pkg.marked {
				continue
			}
			if d.d.Version == "" && pr.version == "" {
				continue
			}
			if once && pr.pkg == p && pr.version == d.d.Version {
				once = false
				continue
			}
			ps.labelStart("conflicts:")
			ps.i.print(pkgText(pr.pkg) + "[" + depText(&d.d) + "]")
		}
	}
	ps.labelEnd()
}

type matchedDep struct {
	pkg   *node
	dep   *pkg.Dependency
	world int
}

func (ps *printState) printMatched(label string, deps []matchedDep) {
	if len(deps) == 0 {
		return
	}
	ps.labelStart(label)
	if ps.s.style == StyleAPK3 {
		ps.sortMatched(deps)
	}
	for _, m := range deps {
		if m.pkg == nil {
			ps.i.print(ps.worldText(m.world))
		} else {
			ps.i.print(pkgText(m.pkg) + "[" + depText(m.dep) + "]")
		}
	}
}

// sortMatched orders a satisfies/breaks list like apk 3 (matched_dep_sort); apk 2 prints it in
// reverse-dependency (hash table) order.
func (ps *printState) sortMatched(deps []matchedDep) {
	sort.SliceStable(deps, func(a, b int) bool {
		ma, mb := deps[a], deps[b]
		if ma.pkg != nil && mb.pkg != nil {
			if ma.pkg.name != mb.pkg.name {
				return nameLess(ma.pkg.name.name, mb.pkg.name.name)
			}
			if r := version.Compare(ma.pkg.p.Version, mb.pkg.p.Version); r != 0 {
				return r < 0
			}
		}
		return depOpCode(ma.dep) < depOpCode(mb.dep)
	})
}

// depOpCode is apk's dep->op value (operator bits plus the conflict bit) used as sort key.
func depOpCode(d *pkg.Dependency) int {
	op := int(d.Op)
	if d.Conflict {
		op |= 16
	}
	return op
}

func (ps *printState) deps(p *node, match int) {
	label := "breaks:"
	if match&matchSatisfies != 0 {
		label = "satisfies:"
	}
	var deps []matchedDep
	for i := range ps.world {
		if analyze(nil, &ps.world[i], p)&match != 0 {
			deps = append(deps, matchedDep{dep: &ps.world[i].d, world: i})
		}
	}
	ps.printMatched(label, deps)
	deps = deps[:0]
	ps.s.foreachReverseDependency(p, func(p0 *node, _ *dep) bool { return p0.marked }, match, true,
		func(p0 *node, d0 *dep) { deps = append(deps, matchedDep{pkg: p0, dep: &d0.d}) })
	ps.printMatched(label, deps)
	ps.labelEnd()
}

func (ps *printState) analyzePackage(p *node, tag int) {
	ps.setLabel(pkgText(p))
	if p.uninstallable {
		ps.labelStart("error:")
		ps.i.print("uninstallable")
		ps.labelEnd()
		if a := p.p.Arch; a != "" && a != "noarch" && len(ps.s.db.arches) > 0 && !ps.s.db.arches[a] {
			ps.labelStart("arch:")
			ps.i.print(a)
			ps.labelEnd()
		}
	}
	ps.pinningErrors(p, tag)
	ps.conflicts(p)
	ps.deps(p, matchConflicts)
	if !ps.hasLabel {
		ps.deps(p, matchSatisfies)
	}
}

func (ps *printState) analyzeMissingName(n *name) {
	if len(n.providers) != 0 {
		ps.setLabel(n.name + " (virtual)")
		ps.labelStart("note:")
		ps.i.words("please select one of the 'provided by' packages explicitly")
		ps.labelEnd()
		ps.labelStart("provided by:")
		for _, p := range n.providers {
			p.pkg.name.printState++
		}
		for _, p := range n.providers {
			n0 := p.pkg.name
			refs := int(n0.printState & stateCountMask)
			if refs == len(n0.providers) {
				ps.i.print(n0.name)
				n0.printState &^= stateCountMask
			} else if refs > 0 {
				ps.i.print(pkgText(p.pkg))
				n0.printState--
			}
		}
		ps.labelEnd()
	} else {
		ps.setLabel(n.name + " (no such package)")
	}
	ps.labelStart("required by:")
	for i := range ps.world {
		if ps.world[i].name != n || ps.world[i].d.Conflict {
			continue
		}
		ps.i.print(ps.worldText(i))
	}
	ps.s.db.genID++
	gen := ps.s.db.genID
	for _, n0 := range n.rdepends {
	providers:
		for _, p0 := range n0.providers {
			if !p0.pkg.marked || p0.pkg.foreachGen == gen {
				continue
			}
			p0.pkg.foreachGen = gen
			for _, d0 := range p0.pkg.depends {
				if d0.name != n || d0.d.Conflict {
					continue
				}
				ps.i.print(pkgText(p0.pkg) + "[" + depText(&d0.d) + "]")
				break providers
			}
		}
	}
	ps.labelEnd()
}

func (ps *printState) analyzeDeps(deps []dep) {
	for _, d := range deps {
		n := d.name
		if d.d.Conflict || n.printState&(stateInstallIf|statePresent|stateMissing) != 0 {
			continue
		}
		n.printState |= stateMissing
		ps.analyzeMissingName(n)
	}
}

func isNameConcrete(p *node, n *name) bool {
	if p.name == n {
		return true
	}
	for _, d := range p.provides {
		if d.name == n && d.d.Version != "" {
			return true
		}
	}
	return false
}

func discoverReverseIIF(n *name) {
	for _, n0 := range n.rinstallIf {
		for _, p := range n0.providers {
			if !p.pkg.marked || len(p.pkg.installIf) == 0 {
				continue
			}
			ok := true
			for _, d := range p.pkg.installIf {
				if d.d.Conflict == (d.name.printState&(statePresent|stateInstallIf) != 0) {
					ok = false
					break
				}
			}
			if ok {
				discoverPrintName(p.pkg.name, stateInstallIf)
				for _, d := range p.pkg.provides {
					discoverPrintName(d.name, stateInstallIf)
				}
			}
		}
	}
}

func discoverPrintName(n *name, pkgState uint32) {
	for _, p := range n.providers {
		st := pkgState
		if !p.pkg.marked {
			continue
		}
		if (st == statePresent || st == stateInstallIf) && p.pkg.p.ProviderPriority == 0 && !isNameConcrete(p.pkg, n) {
			st = stateVirtualOnly
		}
		if p.pkg.printState&st != 0 {
			continue
		}
		p.pkg.printState |= st
		p.pkg.name.printState |= st
		for _, d := range p.pkg.provides {
			ds := st
			if ds == stateInstallIf && d.d.Version == "" {
				ds = stateVirtualOnly
			}
			d.name.printState |= ds
		}
		discoverPrintDeps(p.pkg.depends)
		if st == statePresent || st == stateInstallIf {
			discoverReverseIIF(p.pkg.name)
			for _, d := range p.pkg.provides {
				discoverReverseIIF(d.name)
			}
		}
	}
}

func discoverPrintDeps(deps []dep) {
	for _, d := range deps {
		if d.d.Conflict {
			continue
		}
		discoverPrintName(d.name, statePresent)
	}
}

// errorReport renders apk's "unable to select packages" report for the last solve.
func (s *state) errorReport(world []dep, worldTags []int) string {
	for i := range s.changes {
		if p := s.changes[i].new; p != nil {
			p.marked = true
		}
	}
	discoverPrintDeps(world)
	ps := &printState{s: s, world: world, worldTags: worldTags}
	ps.i.b.WriteString("ERROR: unable to select packages:\n")
	ps.analyzeDeps(world)
	for i := range s.changes {
		c := &s.changes[i]
		if c.new == nil {
			continue
		}
		ps.analyzePackage(c.new, c.newTag)
		ps.analyzeDeps(c.new.depends)
	}
	if ps.numLabels == 0 {
		ps.i.line("  Huh? Error reporter did not find the broken constraints.\n")
	}
	return ps.i.b.String()
}
