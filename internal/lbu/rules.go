package lbu

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ramboot/ramboot/internal/fnmatch"
)

// Mode is a protected-path mode (apk-protected_paths(5)).
type Mode int

// Protect modes, as apk defines them.
const (
	ModeNone         Mode = iota // not protected: never backed up
	ModeIgnore                   // "-": explicitly excluded
	ModeChanged                  // "+": backed up when different from the package
	ModeSymlinksOnly             // "@": only symlinks are backed up
	ModeAll                      // "!": everything is backed up
)

func (m Mode) none() bool { return m == ModeNone || m == ModeIgnore }

func (m Mode) String() string {
	return [...]string{"none", "ignore", "changed", "symlinks-only", "all"}[m]
}

// Rule is one protected-path line: a glob per path component and a mode.
type Rule struct {
	Pattern string // no leading or trailing "/"
	Mode    Mode
	Source  string // file it came from ("builtin" for apk's defaults)
}

// builtinRules are apk's defaults, applied before protected_paths.d.
var builtinRules = []Rule{
	{"etc", ModeChanged, "builtin"},
	{"etc/init.d", ModeSymlinksOnly, "builtin"},
	{"etc/apk", ModeAll, "builtin"},
}

// ParseRule parses one protected_paths.d line; ok is false for comments and blank lines.
func ParseRule(line string) (r Rule, ok bool) {
	line = strings.TrimRight(line, "\r")
	if line == "" || line[0] == '#' {
		return Rule{}, false
	}
	switch line[0] {
	case '-':
		r.Mode, line = ModeIgnore, line[1:]
	case '+':
		r.Mode, line = ModeChanged, line[1:]
	case '@':
		r.Mode, line = ModeSymlinksOnly, line[1:]
	case '!':
		r.Mode, line = ModeAll, line[1:]
	default:
		// apk: any other first character means CHANGED and stays part of the path.
		r.Mode = ModeChanged
	}
	r.Pattern = strings.Trim(line, "/")
	if r.Pattern == "" {
		return Rule{}, false
	}
	return r, true
}

// LoadRules returns apk's built-in rules followed by every ROOT/etc/apk/protected_paths.d/*.list
// (hidden files skipped). Unlike apk, which uses readdir order, files are taken in sorted name
// order so the result is deterministic.
func LoadRules(root string) ([]Rule, error) {
	rules := append([]Rule(nil), builtinRules...)
	dir := filepath.Join(root, "etc/apk/protected_paths.d")
	ents, err := os.ReadDir(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return rules, nil
		}
		return nil, fmt.Errorf("protected paths: %w", err)
	}
	var names []string
	for _, e := range ents {
		if n := e.Name(); strings.HasSuffix(n, ".list") && !strings.HasPrefix(n, ".") && !e.IsDir() {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		p := filepath.Join(dir, n)
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("protected paths: %w", err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if r, ok := ParseRule(sc.Text()); ok {
				r.Source = p
				rules = append(rules, r)
			}
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("protected paths %s: %w", p, err)
		}
	}
	return rules, nil
}

// dirRules is the protection state of one directory, computed like apk's apk_db_dir_get: a
// directory inherits its parent's mode, every parent rule whose first component matches the
// directory's name either sets the mode (no "/" left) or is pushed down with the rest of its
// pattern; later rules override earlier ones.
type dirRules struct {
	mode              Mode
	rules             []Rule // patterns relative to this directory, in order
	protectedChildren bool   // something at or below this directory is protected
	fileRules         bool   // false for the root: apk applies no file-level patterns there
}

func rootRules(rules []Rule) dirRules {
	return dirRules{mode: ModeNone, rules: rules, protectedChildren: true}
}

// child computes the state of subdirectory name.
func (d dirRules) child(name string) dirRules {
	c := dirRules{mode: d.mode, fileRules: true}
	c.protectedChildren = !c.mode.none()
	for _, r := range d.rules {
		first, rest, hasSlash := strings.Cut(r.Pattern, "/")
		if !hasSlash {
			if !fnmatch.Match(r.Pattern, name, fnmatch.PathName) {
				continue
			}
			c.mode = r.Mode
		} else {
			if !fnmatch.Match(first, name, fnmatch.PathName) {
				continue
			}
			c.rules = append(c.rules, Rule{Pattern: rest, Mode: r.Mode, Source: r.Source})
		}
		if !r.Mode.none() {
			c.protectedChildren = true
		}
	}
	return c
}

// fileMode is the protect mode of file name in this directory (determine_file_protect_mode).
func (d dirRules) fileMode(name string) Mode {
	m := d.mode
	if !d.fileRules {
		return m
	}
	for _, r := range d.rules {
		if strings.Contains(r.Pattern, "/") {
			continue
		}
		if fnmatch.Match(r.Pattern, name, fnmatch.PathName) {
			m = r.Mode
		}
	}
	return m
}

// ModeOf returns the protect mode of a root-relative path under rules (for `lbu` listings and
// tests); isDir selects directory or file semantics for the last component.
func ModeOf(rules []Rule, rel string, isDir bool) Mode {
	d := rootRules(rules)
	comps := strings.Split(strings.Trim(rel, "/"), "/")
	for _, c := range comps[:len(comps)-1] {
		d = d.child(c)
	}
	last := comps[len(comps)-1]
	if isDir {
		return d.child(last).mode
	}
	return d.fileMode(last)
}
