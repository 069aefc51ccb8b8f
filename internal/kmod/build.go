package kmod

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Tree is a lib/modules/RELEASE directory on the build host, indexed by module file name so that
// only the modules actually selected need their .modinfo read.
type Tree struct {
	Dir     string
	files   map[string]string  // normalised name -> relative path
	builtin map[string]bool    // normalised names listed in modules.builtin
	cache   map[string]*Module // modinfo read so far
}

// OpenTree lists the module files under dir (a lib/modules/RELEASE directory) and reads its
// modules.builtin if present.
func OpenTree(dir string) (*Tree, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("modules directory: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("modules directory %s: not a directory", dir)
	}
	t := &Tree{Dir: dir, files: map[string]string{}, cache: map[string]*Module{}}
	// WalkDir does not follow a symlinked root; such trees are common in build setups.
	walkRoot, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, fmt.Errorf("modules directory: %w", err)
	}
	err = filepath.WalkDir(walkRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			// Debian's build/ and source/ are symlinks to headers; WalkDir does not follow them.
			return nil
		}
		name := nameFromPath(p)
		if name == "" {
			return nil
		}
		rel, err := filepath.Rel(walkRoot, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if prev, dup := t.files[name]; dup {
			// depmod's default search order prefers updates/ and extra/ over kernel/; without a
			// depmod.conf the first in sorted order wins, deterministically.
			if prev < rel {
				return nil
			}
		}
		t.files[name] = rel
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scan modules directory %s: %w", dir, err)
	}
	t.builtin, err = readBuiltin(filepath.Join(dir, "modules.builtin"))
	if err != nil {
		return nil, err
	}
	return t, nil
}

// Names returns every module name in the tree, sorted.
func (t *Tree) Names() []string {
	names := make([]string, 0, len(t.files))
	for n := range t.files {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Builtin reports whether name is built into the kernel (listed in modules.builtin).
func (t *Tree) Builtin(name string) bool { return t.builtin[NormName(name)] }

// ErrNotFound is returned (wrapped) for a module that is neither a file in the tree nor built in.
var ErrNotFound = errors.New("module not found")

// Module returns the .modinfo of the module called name.
func (t *Tree) Module(name string) (*Module, error) {
	name = NormName(name)
	if m, ok := t.cache[name]; ok {
		return m, nil
	}
	rel, ok := t.files[name]
	if !ok {
		return nil, fmt.Errorf("module %s in %s: %w", name, t.Dir, ErrNotFound)
	}
	m, err := ReadModinfo(filepath.Join(t.Dir, filepath.FromSlash(rel)), rel)
	if err != nil {
		return nil, err
	}
	t.cache[name] = m
	return m, nil
}

// Closure returns the named modules and all their dependencies, dependencies first, each once.
// Requested names that are built in are skipped (they are present without loading); requested
// names that are neither files nor built in are returned in missing. A dependency that cannot be
// found is an error: the tree is inconsistent.
func (t *Tree) Closure(names []string) (mods []*Module, missing []string, err error) {
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(name, from string) error
	visit = func(name, from string) error {
		switch state[name] {
		case 1:
			return fmt.Errorf("module dependency cycle at %s (from %s)", name, from)
		case 2:
			return nil
		}
		if t.builtin[name] {
			if _, isFile := t.files[name]; !isFile {
				state[name] = 2
				return nil
			}
		}
		state[name] = 1
		m, err := t.Module(name)
		if err != nil {
			return fmt.Errorf("dependency of %s: %w", from, err)
		}
		for _, d := range m.Depends {
			if err := visit(d, name); err != nil {
				return err
			}
		}
		state[name] = 2
		mods = append(mods, m)
		return nil
	}
	for _, n := range names {
		n = NormName(n)
		if _, isFile := t.files[n]; !isFile {
			if !t.builtin[n] {
				missing = append(missing, n)
			}
			continue
		}
		if err := visit(n, "command line"); err != nil {
			return nil, nil, err
		}
	}
	return mods, missing, nil
}

// All returns every module of the tree (dependencies first).
func (t *Tree) All() ([]*Module, error) {
	mods, missing, err := t.Closure(t.Names())
	if err != nil {
		return nil, err
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("modules vanished while indexing %s: %v", t.Dir, missing)
	}
	return mods, nil
}

// BuildIndex writes modules.dep and modules.alias for every module under modulesDir, derived from
// the modules' .modinfo.
func BuildIndex(modulesDir string) error {
	t, err := OpenTree(modulesDir)
	if err != nil {
		return err
	}
	mods, err := t.All()
	if err != nil {
		return err
	}
	return WriteIndex(modulesDir, mods)
}

// WriteIndex writes modules.dep and modules.alias into dir for the given modules (see
// IndexFiles).
func WriteIndex(dir string, mods []*Module) error {
	dep, alias, err := IndexFiles(mods)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, "modules.dep"), dep); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, "modules.alias"), alias)
}

// IndexFiles returns the contents of modules.dep and modules.alias for the given modules, which
// must be closed under dependencies (as Closure returns them); dependencies absent from mods are
// taken as built in and not listed.
//
// modules.dep lists, per module, its full transitive dependencies in depmod's order: the last one
// must be loaded first (busybox modprobe loads the list in reverse; kmod and u-root recurse).
func IndexFiles(mods []*Module) (dep, alias []byte, err error) {
	byName := make(map[string]*Module, len(mods))
	for _, m := range mods {
		byName[m.Name] = m
	}
	sorted := append([]*Module(nil), mods...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })

	var db bytes.Buffer
	for _, m := range sorted {
		order, err := loadOrder(m, byName)
		if err != nil {
			return nil, nil, err
		}
		db.WriteString(m.Path + ":")
		// order is deps first and ends with m itself; depmod writes it reversed, without m.
		for i := len(order) - 2; i >= 0; i-- {
			db.WriteString(" " + order[i].Path)
		}
		db.WriteByte('\n')
	}

	var ab bytes.Buffer
	ab.WriteString("# Aliases extracted from modules themselves.\n")
	for _, m := range sorted {
		for _, a := range m.Aliases {
			fmt.Fprintf(&ab, "alias %s %s\n", a, m.Name)
		}
	}
	return db.Bytes(), ab.Bytes(), nil
}

// loadOrder returns m's transitive dependencies, dependencies first, ending with m. Dependencies
// absent from byName are assumed built in.
func loadOrder(m *Module, byName map[string]*Module) ([]*Module, error) {
	var out []*Module
	state := map[string]int{}
	var visit func(x *Module) error
	visit = func(x *Module) error {
		switch state[x.Name] {
		case 1:
			return fmt.Errorf("module dependency cycle at %s", x.Name)
		case 2:
			return nil
		}
		state[x.Name] = 1
		for _, d := range x.Depends {
			if dm, ok := byName[d]; ok {
				if err := visit(dm); err != nil {
					return err
				}
			}
		}
		state[x.Name] = 2
		out = append(out, x)
		return nil
	}
	if err := visit(m); err != nil {
		return nil, err
	}
	return out, nil
}

// writeFileAtomic writes via a temporary file and rename so a failure never leaves a truncated
// index that looks complete.
func writeFileAtomic(name string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// readBuiltin parses modules.builtin (one module path per line); a missing file means none.
func readBuiltin(file string) (map[string]bool, error) {
	out := map[string]bool{}
	f, err := os.Open(file)
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read modules.builtin: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if n := nameFromPath(line); n != "" {
			out[n] = true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	return out, nil
}
