package kmod

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ramboot/ramboot/internal/fnmatch"
)

// Index is a parsed module index of one lib/modules/RELEASE directory (runtime side).
type Index struct {
	dir     string
	paths   map[string]string   // normalised name -> relative path
	deps    map[string][]string // normalised name -> modules.dep dependency paths (depmod order)
	byPath  map[string]string   // relative path -> normalised name
	builtin map[string]bool
	aliases map[string][]alias // keyed by literal bus prefix ("pci", "virtio", ...); "" = other
}

type alias struct {
	pattern string
	module  string
}

// Load parses modulesDir/modules.dep (required), modules.alias and modules.builtin (optional).
func Load(modulesDir string) (*Index, error) {
	ix := &Index{
		dir:     modulesDir,
		paths:   map[string]string{},
		deps:    map[string][]string{},
		byPath:  map[string]string{},
		aliases: map[string][]alias{},
	}
	depFile := filepath.Join(modulesDir, "modules.dep")
	if err := eachLine(depFile, func(line string) error {
		p, rest, ok := strings.Cut(line, ":")
		if !ok {
			return fmt.Errorf("no ':' in %q", line)
		}
		p = strings.TrimSpace(p)
		name := nameFromPath(p)
		if name == "" {
			return fmt.Errorf("not a module path: %q", p)
		}
		ix.paths[name] = p
		ix.byPath[p] = name
		ix.deps[name] = strings.Fields(rest)
		return nil
	}); err != nil {
		return nil, err
	}
	aliasFile := filepath.Join(modulesDir, "modules.alias")
	err := eachLine(aliasFile, func(line string) error {
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "alias" {
			return fmt.Errorf("malformed alias line %q", line)
		}
		a := alias{pattern: f[1], module: NormName(f[2])}
		k := aliasKey(a.pattern)
		ix.aliases[k] = append(ix.aliases[k], a)
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	ix.builtin, err = readBuiltin(filepath.Join(modulesDir, "modules.builtin"))
	if err != nil {
		return nil, err
	}
	return ix, nil
}

// eachLine calls fn for every non-empty, non-comment line of file; errors name the file and line.
func eachLine(file string, fn func(string) error) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("module index: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := fn(line); err != nil {
			return fmt.Errorf("%s:%d: %w", file, n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s: %w", file, err)
	}
	return nil
}

// Dir returns the modules directory the index was loaded from.
func (ix *Index) Dir() string { return ix.dir }

// Builtin reports whether name is built into the kernel.
func (ix *Index) Builtin(name string) bool { return ix.builtin[NormName(name)] }

// Has reports whether name is available: a module file in the index or built in.
func (ix *Index) Has(name string) bool {
	name = NormName(name)
	_, ok := ix.paths[name]
	return ok || ix.builtin[name]
}

// Resolve returns the module file paths (relative to the modules directory) to load for name,
// dependencies first and name's own file last. A built-in module resolves to nothing. An unknown
// name is an error wrapping ErrNotFound.
func (ix *Index) Resolve(name string) ([]string, error) {
	name = NormName(name)
	if _, ok := ix.paths[name]; !ok {
		if ix.builtin[name] {
			return nil, nil
		}
		return nil, fmt.Errorf("module %s in %s: %w", name, ix.dir, ErrNotFound)
	}
	var out []string
	state := map[string]int{}
	var visit func(n string) error
	visit = func(n string) error {
		switch state[n] {
		case 1:
			return fmt.Errorf("module dependency cycle at %s", n)
		case 2:
			return nil
		}
		state[n] = 1
		deps := ix.deps[n]
		// depmod lists the dependency to load first last.
		for i := len(deps) - 1; i >= 0; i-- {
			dn, ok := ix.byPath[deps[i]]
			if !ok {
				return fmt.Errorf("module %s: dependency %s not in modules.dep", n, deps[i])
			}
			if err := visit(dn); err != nil {
				return err
			}
		}
		state[n] = 2
		out = append(out, ix.paths[n])
		return nil
	}
	if err := visit(name); err != nil {
		return nil, err
	}
	return out, nil
}

// MatchAlias returns the names of the modules with an alias glob matching modalias, in
// modules.alias order, each once.
func (ix *Index) MatchAlias(modalias string) []string {
	var out []string
	seen := map[string]bool{}
	try := func(list []alias) {
		for _, a := range list {
			if !seen[a.module] && fnmatch.Match(a.pattern, modalias, 0) {
				seen[a.module] = true
				out = append(out, a.module)
			}
		}
	}
	if k := aliasKey(modalias); k != "" {
		try(ix.aliases[k])
	}
	try(ix.aliases[""])
	return out
}

// aliasKey is the literal bus prefix before the first ':' ("pci", "usb", "virtio"...), used to
// avoid matching every device against every alias; "" when the prefix is absent or contains glob
// characters.
func aliasKey(s string) string {
	i := strings.IndexByte(s, ':')
	if i <= 0 || strings.ContainsAny(s[:i], `*?[\`) {
		return ""
	}
	return s[:i]
}
