package solver

import "sort"

// NotRemovedReport is what apk del prints when a name it removed from world stays installed
// because something else still needs it ("World updated, but the following packages are not
// removed due to:" and one "  name: reasons" block per such name, then an empty line), or ""
// when every deleted name goes away.
func (sol *Solution) NotRemovedReport(deleted []string) string {
	s := sol.st
	if s == nil {
		return ""
	}
	for i := range s.changes {
		if p := s.changes[i].new; p != nil {
			p.marked = true
		}
	}
	inWorld := map[*name]bool{}
	for _, d := range s.world {
		inWorld[d.name] = true
	}
	sorted := append([]string(nil), deleted...)
	sort.SliceStable(sorted, func(a, b int) bool { return nameLess(sorted[a], sorted[b]) })

	var ind indenter
	header := false
	var visit func(n *name, p0 *node, gen int)
	visit = func(n *name, p0 *node, gen int) {
		if !header {
			ind.b.WriteString("World updated, but the following packages are not removed due to:\n")
			header = true
		}
		if ind.indent == 0 {
			ind.group(0, "  "+n.name+":")
		}
		if inWorld[p0.name] {
			ind.print(p0.name.name)
		}
		for _, d := range p0.provides {
			if inWorld[d.name] {
				ind.print(d.name.name)
			}
		}
		// reverse dependencies that keep p0, each package once, depth first as apk's callback
		rd := func(rdeps []*name) {
			for _, n0 := range rdeps {
				for _, pr := range n0.providers {
					q := pr.pkg
					if !q.marked || q.foreachGen == gen {
						continue
					}
					q.foreachGen = gen // apk marks a package visited before looking at its deps
					for i := range q.depends {
						if analyze(q, &q.depends[i], p0)&matchSatisfies != 0 {
							visit(n, q, gen)
							break
						}
					}
				}
			}
		}
		rd(p0.name.rdepends)
		for _, d := range p0.provides {
			rd(d.name.rdepends)
		}
		for _, d := range p0.installIf {
			for _, pr := range d.name.providers {
				if !pr.pkg.marked || pr.pkg.foreachGen == gen {
					continue
				}
				pr.pkg.foreachGen = gen
				visit(n, pr.pkg, gen)
			}
		}
	}
	for _, nm := range sorted {
		n, ok := s.db.names[nm]
		if !ok || n.installedPkg == nil {
			// only something that was installed can be "not removed"
			continue
		}
		s.db.genID++
		gen := s.db.genID
		ind.x, ind.indent = 0, 0
		for _, p := range n.providers {
			if p.pkg.marked {
				visit(n, p.pkg, gen)
			}
		}
		ind.end()
	}
	if header {
		ind.b.WriteString("\n")
	}
	return ind.b.String()
}
