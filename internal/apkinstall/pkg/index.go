package pkg

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Package is one package record of an APKINDEX or of lib/apk/db/installed.
type Package struct {
	Name, Version, Arch, Description, URL, License, Origin, Maintainer, Commit string

	Checksum         string // "Q1..." identity (C:)
	Size             int64  // S: size of the .apk file
	InstalledSize    int64  // I: installed size; 0 = meta package, nothing to unpack
	BuildTime        int64  // t:
	ProviderPriority int    // k:

	Depends, Provides, InstallIf, Replaces []Dependency
	ReplacesPriority                       int // q: (installed db)

	RepoTag string // repository tag ("" default); s: in the installed db
	Repo    int    // index into the repository list, -1 = installed only

	// Uninstallable is set when the record uses an index feature this reader does not know
	// (unknown upper-case field) or carries a dependency with an invalid version; apk refuses
	// to install such packages but still lists them.
	Uninstallable bool
}

// String is apk's "name-version".
func (p *Package) String() string { return p.Name + "-" + p.Version }

// ParseIndex reads APKINDEX (or installed-db) text. Records are separated by blank lines; lines
// that are not "X:value" are ignored, as apk does. Installed-db file lines (F: R: Z: M: a: f: g:)
// are skipped; r: q: s: fill Replaces, ReplacesPriority and RepoTag.
func ParseIndex(r io.Reader) ([]*Package, error) {
	var (
		pkgs      []*Package
		cur       *Package
		startLine int
	)
	finish := func() error {
		if cur == nil {
			return nil
		}
		if cur.Name == "" || cur.Version == "" {
			return fmt.Errorf("index record at line %d: missing P: or V: field", startLine)
		}
		pkgs = append(pkgs, cur)
		cur = nil
		return nil
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	lineNo := 0
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		if line == "" {
			if err := finish(); err != nil {
				return nil, err
			}
			continue
		}
		if len(line) < 2 || line[1] != ':' {
			continue
		}
		if cur == nil {
			cur = &Package{}
			startLine = lineNo
		}
		if err := cur.setField(line[0], line[2:]); err != nil {
			return nil, fmt.Errorf("index line %d (%q): %w", lineNo, line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading index: %w", err)
	}
	if err := finish(); err != nil {
		return nil, err
	}
	return pkgs, nil
}

func (p *Package) setDeps(dst *[]Dependency, v string) error {
	deps, err := ParseDependencies(v)
	if err != nil {
		if !errors.Is(err, ErrVersion) {
			return err
		}
		p.Uninstallable = true
	}
	for _, d := range deps {
		if d.Tag != "" {
			// apk rejects @tag inside package metadata (allow_tag=false).
			return fmt.Errorf("dependency %q: repository tag not allowed here: %w", d.String(), ErrSyntax)
		}
	}
	*dst = append(*dst, deps...)
	return nil
}

func parseInt(field byte, v string) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("field %c: %w", field, err)
	}
	return n, nil
}

func (p *Package) setField(f byte, v string) error {
	var err error
	switch f {
	case 'C':
		p.Checksum = v
	case 'P':
		p.Name = v
	case 'V':
		p.Version = v
	case 'A':
		p.Arch = v
	case 'T':
		p.Description = v
	case 'U':
		p.URL = v
	case 'L':
		p.License = v
	case 'o':
		p.Origin = v
	case 'm':
		p.Maintainer = v
	case 'c':
		p.Commit = v
	case 'S':
		p.Size, err = parseInt(f, v)
	case 'I':
		p.InstalledSize, err = parseInt(f, v)
	case 't':
		p.BuildTime, err = parseInt(f, v)
	case 'k':
		var n int64
		n, err = parseInt(f, v)
		p.ProviderPriority = int(n)
	case 'q':
		var n int64
		n, err = parseInt(f, v)
		p.ReplacesPriority = int(n)
	case 'D':
		err = p.setDeps(&p.Depends, v)
	case 'p':
		err = p.setDeps(&p.Provides, v)
	case 'i':
		err = p.setDeps(&p.InstallIf, v)
	case 'r':
		err = p.setDeps(&p.Replaces, v)
	case 's':
		p.RepoTag = v
	case 'F', 'M', 'R', 'Z', 'a', 'f', 'g':
		// installed-db file and flag lines: the db package reads them
	default:
		// Unknown upper-case fields are features of a newer apk that change semantics;
		// lower-case ones are informational and ignored.
		if f >= 'A' && f <= 'Z' {
			p.Uninstallable = true
		}
	}
	return err
}

// WriteIndexRecord writes p's index header in apk's field order (apk_pkg_write_index_header):
// C P V A S I T U L o m t c k D p i. It does not write the terminating blank line, so the
// installed-db writer can append r:/q:/s:/F:/R: lines; the index writer adds "\n" itself.
func WriteIndexRecord(w io.Writer, p *Package) error {
	var b strings.Builder
	line := func(f byte, v string) {
		b.WriteByte(f)
		b.WriteByte(':')
		b.WriteString(v)
		b.WriteByte('\n')
	}
	line('C', p.Checksum)
	line('P', p.Name)
	line('V', p.Version)
	if p.Arch != "" {
		line('A', p.Arch)
	}
	line('S', strconv.FormatInt(p.Size, 10))
	line('I', strconv.FormatInt(p.InstalledSize, 10))
	line('T', p.Description)
	line('U', p.URL)
	line('L', p.License)
	if p.Origin != "" {
		line('o', p.Origin)
	}
	if p.Maintainer != "" {
		line('m', p.Maintainer)
	}
	if p.BuildTime != 0 {
		line('t', strconv.FormatInt(p.BuildTime, 10))
	}
	if p.Commit != "" {
		line('c', p.Commit)
	}
	if p.ProviderPriority != 0 {
		line('k', strconv.Itoa(p.ProviderPriority))
	}
	if len(p.Depends) > 0 {
		line('D', FormatDependencies(p.Depends))
	}
	if len(p.Provides) > 0 {
		line('p', FormatDependencies(p.Provides))
	}
	if len(p.InstallIf) > 0 {
		line('i', FormatDependencies(p.InstallIf))
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("writing index record %s: %w", p, err)
	}
	return nil
}

// WriteInstalledFields writes the installed-db lines that follow the index header and precede
// the file list, in apk's order: r: (replaces), q: (replaces_priority), s: (repository tag).
func WriteInstalledFields(w io.Writer, p *Package) error {
	var b strings.Builder
	if len(p.Replaces) > 0 {
		fmt.Fprintf(&b, "r:%s\n", FormatDependencies(p.Replaces))
	}
	if p.ReplacesPriority != 0 {
		fmt.Fprintf(&b, "q:%d\n", p.ReplacesPriority)
	}
	if p.RepoTag != "" {
		fmt.Fprintf(&b, "s:%s\n", p.RepoTag)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("writing installed fields of %s: %w", p, err)
	}
	return nil
}
