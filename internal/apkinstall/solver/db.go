package solver

import (
	"encoding/base64"
	"fmt"
	"math/bits"
	"sort"

	"github.com/ramboot/ramboot/internal/apkinstall/pkg"
)

// provider is one way a name can be satisfied: a package, with the version it provides the name
// at ("" = unversioned provide, apk's null version).
type provider struct {
	pkg     *node
	version string
}

func (p provider) null() bool { return p.pkg != nil && p.version == "" }

// name is apk's struct apk_name: every package name, provided name and dependency target.
type name struct {
	name       string
	providers  []provider
	rdepends   []*name // names having a provider that depends on this name
	rinstallIf []*name // names having a provider with this name in install_if

	solverFlagsSet bool // set by per-name solver flags (apk add -u NAME); unused yet
	nameState
}

// nameState is the per-solve state of a name (apk's name->ss), reset on every (re)start.
type nameState struct {
	seen, locked, noIIF, hasIIF, iifNeeded         bool
	hasOptions, reverseDepsDone, hasAutoSelectable bool
	resolvenow, reevaluateDeps, reevaluateIIF      bool
	hasVirtualProvides                             bool
	requirers, mergeDepends, mergeProvides         int
	orderID                                        uint32
	chosen                                         provider
	dirty, unres                                   link      // dirty list; resolvenow list
	heap                                           *nameHeap // selectable or unresolved queue
	heapIdx                                        int
	heapSeq                                        uint64
	installedPkg                                   *node
	installedName                                  *name
	changesetProcessed, changesetRemoved           bool
	printState                                     uint32 // error report bookkeeping
}

// dep is a dependency bound to its target name.
type dep struct {
	name *name
	d    pkg.Dependency
}

// node is one package known to the solver (apk's struct apk_package plus its solver state).
type node struct {
	p                            *pkg.Package
	name                         *name
	depends, provides, installIf []dep
	repos                        uint64 // bit i+1 = Request.Repos[i]
	installed                    bool
	installedTag                 int
	uninstallable                bool

	nodeState
}

// nodeState is the per-solve state of a package (apk's pkg->ss).
type nodeState struct {
	seen, selectable, available, iifFailed, iifTriggered bool
	tagPreferred, tagOK, depsMerged, depsUsed, err       bool
	inChangeset, marked                                  bool
	pinningAllowed, pinningPreferred                     uint32
	flags, flagsInheritable                              uint32
	conflicts                                            int
	foreachGen                                           int
	printState                                           uint32
}

// tag is one repository tag; index 0 is the default (untagged) set.
type tag struct {
	name    string // "" or "@name"
	allowed uint64 // repository bits
}

// db is the solver's view of installed packages and repositories.
type db struct {
	names     map[string]*name
	nameOrder []*name
	nodes     []*node
	installed []*node
	tags      []tag
	repoBits  uint64
	arches    map[string]bool
	genID     int
}

// reset clears all per-solve state (apk's free_name/free_package before a restart).
func (d *db) reset() {
	for _, n := range d.nameOrder {
		n.nameState = nameState{}
	}
	for _, n := range d.nodes {
		n.nodeState = nodeState{}
	}
}

const defaultPinningMask = 1 // BIT(default tag)

func (d *db) getName(s string) *name {
	if n, ok := d.names[s]; ok {
		return n
	}
	n := &name{name: s}
	d.names[s] = n
	d.nameOrder = append(d.nameOrder, n)
	return n
}

// tagID returns the index of tag t ("" = default), creating an empty one like apk_db_get_tag_id.
func (d *db) tagID(t string) int {
	if t == "" {
		return 0
	}
	for i, tg := range d.tags {
		if tg.name == "@"+t {
			return i
		}
	}
	d.tags = append(d.tags, tag{name: "@" + t})
	return len(d.tags) - 1
}

func (d *db) pinningRepos(mask uint32) uint64 {
	var r uint64
	for i, t := range d.tags {
		if mask&(1<<uint(i)) != 0 {
			r |= t.allowed
		}
	}
	return r
}

func (d *db) bindDeps(deps []pkg.Dependency) []dep {
	out := make([]dep, len(deps))
	for i, x := range deps {
		out[i] = dep{name: d.getName(x.Name), d: x}
	}
	return out
}

// addPackage registers p (merging with an identical C: identity already known) and returns it.
func (d *db) addPackage(p *pkg.Package, byID map[string]*node, repoBit uint64) *node {
	id := identity(p.Checksum)
	if id != "" {
		if n, ok := byID[id]; ok {
			n.repos |= repoBit
			return n
		}
	}
	n := &node{p: p, repos: repoBit, uninstallable: p.Uninstallable}
	n.name = d.getName(p.Name)
	n.depends = d.bindDeps(p.Depends)
	n.provides = d.bindDeps(p.Provides)
	n.installIf = d.bindDeps(p.InstallIf)
	if len(d.arches) > 0 && p.Arch != "" && p.Arch != "noarch" && !d.arches[p.Arch] {
		n.uninstallable = true
	}
	n.name.providers = append(n.name.providers, provider{pkg: n, version: p.Version})
	for _, pr := range n.provides {
		pr.name.providers = append(pr.name.providers, provider{pkg: n, version: pr.d.Version})
	}
	if id != "" {
		byID[id] = n
	}
	d.nodes = append(d.nodes, n)
	return n
}

// identity is the package identity apk keys packages by: the decoded C: digest. apk's base64
// decoder ignores the unused low bits of the last character, so two spellings can name the same
// package (upstream's installif1.repo relies on that); undecodable values are used verbatim.
func identity(c string) string {
	if len(c) > 2 && c[0] == 'Q' && c[1] == '1' {
		if b, err := base64.StdEncoding.DecodeString(c[2:]); err == nil {
			return string(b)
		}
	}
	return c
}

func newDB(req *Request) (*db, error) {
	if len(req.Repos) > 62 {
		return nil, fmt.Errorf("solver: %d repositories, at most 62 supported", len(req.Repos))
	}
	d := &db{names: map[string]*name{}, tags: []tag{{name: ""}}}
	if len(req.Arch) > 0 {
		d.arches = map[string]bool{}
		for _, a := range req.Arch {
			d.arches[a] = true
		}
	}
	byID := map[string]*node{}
	// apk reads the installed database before the repository indexes.
	for _, p := range req.Installed {
		n := d.addPackage(p, byID, 0)
		if !n.installed {
			n.installed = true
			n.uninstallable = false // apk never marks installed packages uninstallable by arch
			d.installed = append(d.installed, n)
		}
	}
	for i, r := range req.Repos {
		bit := uint64(1) << uint(i+1)
		d.repoBits |= bit
		t := d.tagID(r.Tag)
		d.tags[t].allowed |= bit
		for _, p := range r.Packages {
			d.addPackage(p, byID, bit)
		}
	}
	for _, n := range d.installed {
		n.installedTag = d.tagID(n.p.RepoTag)
	}
	return d, nil
}

// apk keeps names in a hash table of 20000 buckets keyed by murmur3_32(name, seed 5381) and
// inserts at the head of a bucket; apk_db_name_rdepends walks that table, so the order of every
// rdepends/rinstall_if list (and with it the order of install_if packages in the changeset and
// of error report lines) is the table's iteration order.
const nameBuckets = 20000

func murmur3(s string, seed uint32) uint32 {
	const c1, c2 = 0xcc9e2d51, 0x1b873593
	h := seed
	n := len(s) / 4
	for i := 0; i < n; i++ {
		k := uint32(s[4*i]) | uint32(s[4*i+1])<<8 | uint32(s[4*i+2])<<16 | uint32(s[4*i+3])<<24
		k *= c1
		k = bits.RotateLeft32(k, 15)
		k *= c2
		h ^= k
		h = bits.RotateLeft32(h, 13)*5 + 0xe6546b64
	}
	var k uint32
	t := s[4*n:]
	switch len(t) {
	case 3:
		k ^= uint32(t[2]) << 16
		fallthrough
	case 2:
		k ^= uint32(t[1]) << 8
		fallthrough
	case 1:
		k ^= uint32(t[0])
		k *= c1
		k = bits.RotateLeft32(k, 15)
		k *= c2
		h ^= k
	}
	h ^= uint32(len(s))
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}

// hashOrder returns the names in apk's hash table iteration order: by bucket, and within a
// bucket the most recently created first.
func (d *db) hashOrder() []*name {
	type item struct {
		n      *name
		bucket uint32
		seq    int
	}
	items := make([]item, len(d.nameOrder))
	for i, n := range d.nameOrder {
		items[i] = item{n, murmur3(n.name, 5381) % nameBuckets, i}
	}
	sort.Slice(items, func(a, b int) bool {
		if items[a].bucket != items[b].bucket {
			return items[a].bucket < items[b].bucket
		}
		return items[a].seq > items[b].seq
	})
	out := make([]*name, len(items))
	for i, it := range items {
		out[i] = it.n
	}
	return out
}

// indexReverse fills rdepends and rinstallIf like apk_db_name_rdepends: every name (provided
// names included) is listed once in the lists of the names its providers depend on.
func (d *db) indexReverse() {
	for _, nm := range d.hashOrder() {
		seenDep := map[*name]bool{}
		seenIIF := map[*name]bool{}
		for _, p := range nm.providers {
			for _, x := range p.pkg.depends {
				if !seenDep[x.name] {
					seenDep[x.name] = true
					x.name.rdepends = append(x.name.rdepends, nm)
				}
			}
			for _, x := range p.pkg.installIf {
				if !seenIIF[x.name] {
					seenIIF[x.name] = true
					x.name.rinstallIf = append(x.name.rinstallIf, nm)
				}
			}
		}
	}
}

// pkgRepos is get_pkg_repos: an installed package also counts as present in its pinned tag.
func (d *db) pkgRepos(n *node) uint64 {
	r := n.repos
	if n.installed {
		r |= d.tags[n.installedTag].allowed
	}
	return r
}

// tagFor is get_tag: the first allowed tag that offers one of repos.
func (d *db) tagFor(mask uint32, repos uint64) int {
	for i, t := range d.tags {
		if mask&(1<<uint(i)) == 0 {
			continue
		}
		if t.allowed&repos != 0 {
			return i
		}
	}
	return 0
}

// ffs is C's ffs(): 1-based index of the lowest set bit, 0 for none.
func ffs(x uint64) int {
	if x == 0 {
		return 0
	}
	return bits.TrailingZeros64(x) + 1
}
