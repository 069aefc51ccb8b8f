// Package pkg holds apk's package record and dependency types, and parses and writes the
// APKINDEX / installed-database text format (one "X:value" line per field, records separated by
// blank lines).
package pkg

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ramboot/ramboot/internal/apkinstall/version"
)

// Op is a dependency operator: a bitmask of Equal, Less, Greater and Fuzzy, with the same bit
// values apk uses. Any (all three comparison bits) is an unversioned dependency; Checksum
// (Less|Greater, written "><") pins an exact package identity (Q1... hash).
type Op uint8

// Operator bits.
const (
	Equal    = Op(version.Equal)
	Less     = Op(version.Less)
	Greater  = Op(version.Greater)
	Fuzzy    = Op(version.Fuzzy)
	Any      = Equal | Less | Greater
	Checksum = Less | Greater
)

// String is the operator text as apk prints it ("" for Any).
func (o Op) String() string { return version.OpString(uint8(o)) }

// Dependency is one "[!]name[@tag][op version]" constraint.
type Dependency struct {
	Name     string
	Version  string // "" when unversioned (Op == Any); a Q1 hash when Op == Checksum
	Op       Op
	Conflict bool   // "!name": nothing matching may be installed
	Tag      string // repository tag without "@" (world/command line only)
}

// ErrSyntax marks a dependency that cannot be parsed at all; ErrVersion one whose version is not
// a valid apk version (apk then treats the dependency, and a package carrying it, as broken).
var (
	ErrSyntax  = errors.New("invalid dependency syntax")
	ErrVersion = errors.New("invalid version")
)

// isComparer reports the operator characters that end a dependency name.
func isComparer(c byte) bool { return c == '<' || c == '>' || c == '=' || c == '~' }

// ParseDependency parses "[!]name[@tag][op version]". For a syntactically fine dependency with an
// invalid version it returns the parsed dependency together with an error wrapping ErrVersion.
func ParseDependency(s string) (Dependency, error) {
	var d Dependency
	spec := s
	if strings.HasPrefix(spec, "!") {
		d.Conflict = true
		spec = spec[1:]
	}
	i := strings.IndexFunc(spec, func(r rune) bool { return r < 0x80 && isComparer(byte(r)) })
	name := spec
	if i >= 0 {
		name = spec[:i]
		j := i
		for j < len(spec) && isComparer(spec[j]) {
			j++
		}
		op, ok := version.ParseOp(spec[i:j])
		if !ok {
			return Dependency{}, fmt.Errorf("dependency %q: operator %q: %w", s, spec[i:j], ErrSyntax)
		}
		d.Op = Op(op)
		d.Version = spec[j:]
	} else {
		d.Op = Any
	}
	if at := strings.IndexByte(name, '@'); at >= 0 {
		d.Tag = name[at+1:]
		name = name[:at]
	}
	if name == "" || strings.ContainsAny(name, " \t\n") {
		return Dependency{}, fmt.Errorf("dependency %q: empty or invalid name: %w", s, ErrSyntax)
	}
	d.Name = name
	if d.Op != Any && d.Op != Checksum && !version.Valid(d.Version) {
		return d, fmt.Errorf("dependency %q: %q: %w", s, d.Version, ErrVersion)
	}
	if d.Op == Checksum && d.Version == "" {
		return Dependency{}, fmt.Errorf("dependency %q: empty checksum: %w", s, ErrSyntax)
	}
	return d, nil
}

// ParseDependencies parses a whitespace separated list. On ErrVersion the well-formed list is
// still returned with the (first) error, so index readers can mark the package broken.
func ParseDependencies(s string) ([]Dependency, error) {
	var deps []Dependency
	var firstErr error
	for _, f := range strings.Fields(s) {
		d, err := ParseDependency(f)
		if err != nil {
			if !errors.Is(err, ErrVersion) {
				return nil, err
			}
			if firstErr == nil {
				firstErr = err
			}
		}
		deps = append(deps, d)
	}
	return deps, firstErr
}

// String renders the dependency in apk's canonical text.
func (d Dependency) String() string {
	var b strings.Builder
	if d.Conflict {
		b.WriteByte('!')
	}
	b.WriteString(d.Name)
	if d.Tag != "" {
		b.WriteByte('@')
		b.WriteString(d.Tag)
	}
	if d.Version != "" {
		b.WriteString(d.Op.String())
		b.WriteString(d.Version)
	}
	return b.String()
}

// FormatDependencies joins deps with single spaces, as apk writes D:/p:/i: lines and world.
func FormatDependencies(deps []Dependency) string {
	parts := make([]string, len(deps))
	for i, d := range deps {
		parts[i] = d.String()
	}
	return strings.Join(parts, " ")
}

// MatchVersion reports whether a provider with version have ("" = unversioned provide) satisfies
// the version part of d, ignoring Conflict and Checksum.
func (d Dependency) MatchVersion(have string) bool {
	return version.Match(have, uint8(d.Op), d.Version)
}

// ProvidedBy reports whether d is satisfied by package p providing d.Name with version have
// ("" = unversioned provide); p == nil means "nothing provides the name". This is apk's
// apk_dep_is_provided: a conflict is satisfied by absence and by the declaring package itself
// (owner, may be nil), a checksum dependency only by the package with that identity.
func (d Dependency) ProvidedBy(owner, p *Package, have string) bool {
	if p == nil {
		return d.Conflict
	}
	if d.Conflict && owner == p {
		return true
	}
	var ok bool
	if d.Op == Checksum {
		ok = p.Checksum == d.Version
	} else {
		ok = d.MatchVersion(have)
	}
	return ok != d.Conflict
}
