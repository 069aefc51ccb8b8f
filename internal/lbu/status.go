package lbu

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ramboot/ramboot/overlay"
)

// Diff is one difference between the committed overlay and what would be committed now.
type Diff struct {
	Path   string
	Reason byte   // A added, D deleted, U content or symlink target, M mode/owner/type
	Detail string // e.g. "mode 0644→0600", "symlink /a → /b"
	Old    *Entry
	New    *Entry
}

func (d Diff) String() string { return string(d.Reason) + " " + d.Path }

// committed finds and reads the current overlay of host in the target; nil when there is none.
func committed(o *Options, media string, keepData bool) (Manifest, string, error) {
	host, err := o.hostname()
	if err != nil {
		return nil, "", err
	}
	tgt, err := o.ResolveTarget(media)
	if err != nil {
		return nil, "", err
	}
	ms, err := openMedia(o.Root, tgt.Dir, tgt.NeedMount, false, nil)
	if err != nil {
		return nil, "", err
	}
	defer ms.close()
	cands, _, err := overlay.Scan(tgt.Dir)
	if err != nil {
		return nil, "", err
	}
	var mine []overlay.Candidate
	for _, c := range cands {
		if c.Name == host {
			mine = append(mine, c)
		}
	}
	best, _ := overlay.Choose(mine, host)
	if best == nil {
		return nil, "", nil
	}
	ro := o.restoreOpts()
	if best.Encrypted && ro.Password == nil {
		return nil, "", fmt.Errorf("%s is encrypted and needs a password: set PASSWORD in lbu.conf, use -p, or run on a terminal", best.Path)
	}
	gz, _, err := overlay.Load(best.Path, ro)
	if err != nil {
		return nil, "", err
	}
	m, err := ReadManifest(gz, maxBytes(ro), keepData)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", best.Path, err)
	}
	return m, best.Path, nil
}

// current is the manifest of what would be committed now (no hooks: status must not have side
// effects).
func current(o *Options, keepData bool) (Manifest, error) {
	files, err := FileList(o.Root)
	if err != nil {
		return nil, err
	}
	gz, _, err := BuildArchive(o.Root, files)
	if err != nil {
		return nil, err
	}
	return ReadManifest(gz, overlay.DefaultMaxBytes, keepData)
}

// Status compares the committed overlay with the current state: added, deleted, content and
// symlink-target changes, mode/owner changes. It returns the overlay path it compared with
// ("" when none is committed: then everything is A).
func Status(ctx context.Context, o *Options, media string) ([]Diff, string, error) {
	old, path, err := committed(o, media, false)
	if err != nil {
		return nil, "", err
	}
	cur, err := current(o, false)
	if err != nil {
		return nil, "", err
	}
	return compare(old, cur), path, nil
}

func compare(old, cur Manifest) []Diff {
	var out []Diff
	for n, e := range cur {
		o, ok := old[n]
		if !ok {
			out = append(out, Diff{Path: n, Reason: 'A', New: e})
			continue
		}
		if d := entryDiff(o, e); d != nil {
			out = append(out, *d)
		}
	}
	for n, e := range old {
		if _, ok := cur[n]; !ok {
			out = append(out, Diff{Path: n, Reason: 'D', Old: e})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

func typeName(t byte) string {
	switch t {
	case tar.TypeDir:
		return "directory"
	case tar.TypeSymlink:
		return "symlink"
	case tar.TypeLink:
		return "hardlink"
	default:
		return "file"
	}
}

func entryDiff(o, n *Entry) *Diff {
	d := &Diff{Path: n.Name, Old: o, New: n}
	var parts []string
	switch {
	case o.Type != n.Type:
		d.Reason = 'U'
		parts = append(parts, typeName(o.Type)+" → "+typeName(n.Type))
	case n.Type == tar.TypeSymlink && o.Link != n.Link:
		d.Reason = 'U'
		parts = append(parts, "symlink "+o.Link+" → "+n.Link)
	case n.Type == tar.TypeLink && o.Link != n.Link:
		d.Reason = 'U'
		parts = append(parts, "hardlink "+o.Link+" → "+n.Link)
	case n.Type == tar.TypeReg && o.SHA256 != n.SHA256:
		d.Reason = 'U'
		parts = append(parts, "content")
	}
	if n.Type != tar.TypeSymlink {
		if o.Mode != n.Mode {
			parts = append(parts, fmt.Sprintf("mode %04o → %04o", o.Mode, n.Mode))
		}
		if o.UID != n.UID || o.GID != n.GID {
			parts = append(parts, fmt.Sprintf("owner %d:%d → %d:%d", o.UID, o.GID, n.UID, n.GID))
		}
	}
	if len(parts) == 0 {
		return nil
	}
	if d.Reason == 0 {
		d.Reason = 'M'
	}
	d.Detail = strings.Join(parts, ", ")
	return d
}

// WriteDiff writes a unified diff (diff -ruN style, a/ = committed, b/ = current) of every
// change, plus lines for mode, owner, type and symlink changes that diff cannot show.
func WriteDiff(ctx context.Context, o *Options, media string, w io.Writer) error {
	old, _, err := committed(o, media, true)
	if err != nil {
		return err
	}
	cur, err := current(o, true)
	if err != nil {
		return err
	}
	for _, d := range compare(old, cur) {
		var a, b []byte
		aName, bName := "a/"+d.Path, "b/"+d.Path
		switch d.Reason {
		case 'A':
			aName = "/dev/null"
		case 'D':
			bName = "/dev/null"
		}
		if d.Old != nil {
			a = d.Old.Data
		}
		if d.New != nil {
			b = d.New.Data
		}
		header := fmt.Sprintf("diff -ruN a/%s b/%s\n", d.Path, d.Path)
		if d.Detail != "" {
			header += "# " + d.Detail + "\n"
		} else if d.Reason == 'A' {
			header += "# new " + typeName(d.New.Type) + describe(d.New) + "\n"
		} else if d.Reason == 'D' {
			header += "# deleted " + typeName(d.Old.Type) + describe(d.Old) + "\n"
		}
		io.WriteString(w, header)
		isFile := func(e *Entry) bool { return e == nil || e.Type == tar.TypeReg }
		if !isFile(d.Old) || !isFile(d.New) || bytes.Equal(a, b) {
			continue
		}
		if isBinary(a) || isBinary(b) {
			fmt.Fprintf(w, "Binary files %s and %s differ\n", aName, bName)
			continue
		}
		fmt.Fprintf(w, "--- %s\n+++ %s\n", aName, bName)
		unifiedDiff(w, splitLines(a), splitLines(b))
	}
	return nil
}

func describe(e *Entry) string {
	s := fmt.Sprintf(" mode %04o owner %d:%d", e.Mode, e.UID, e.GID)
	if e.Link != "" {
		s += " → " + e.Link
	}
	return s
}

func isBinary(b []byte) bool { return bytes.IndexByte(b, 0) >= 0 }

func splitLines(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	s := string(b)
	lines := strings.SplitAfter(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// unifiedDiff writes hunks with 3 lines of context from an LCS edit script (config files are
// small; very large inputs get a one-line summary instead).
func unifiedDiff(w io.Writer, a, b []string) {
	if len(a)*len(b) > 4_000_000 {
		fmt.Fprintf(w, "@@ files differ (%d and %d lines, too large to diff) @@\n", len(a), len(b))
		return
	}
	// lcs[i][j] = LCS length of a[i:], b[j:].
	n, m := len(a), len(b)
	lcs := make([][]int32, n+1)
	for i := range lcs {
		lcs[i] = make([]int32, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else if lcs[i+1][j] >= lcs[i][j+1] {
				lcs[i][j] = lcs[i+1][j]
			} else {
				lcs[i][j] = lcs[i][j+1]
			}
		}
	}
	type op struct {
		kind byte // ' ', '-', '+'
		line string
		ai   int
		bi   int
	}
	var ops []op
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			ops = append(ops, op{' ', a[i], i, j})
			i++
			j++
		case i < n && (j == m || lcs[i+1][j] >= lcs[i][j+1]):
			// Deletions first, like diff -u.
			ops = append(ops, op{'-', a[i], i, j})
			i++
		default:
			ops = append(ops, op{'+', b[j], i, j})
			j++
		}
	}
	const ctx = 3
	for k := 0; k < len(ops); {
		if ops[k].kind == ' ' {
			k++
			continue
		}
		start := k - ctx
		if start < 0 {
			start = 0
		}
		end := k
		for end < len(ops) {
			if ops[end].kind != ' ' {
				end++
				continue
			}
			run := end
			for run < len(ops) && ops[run].kind == ' ' {
				run++
			}
			if run-end > 2*ctx || run == len(ops) {
				end += min(ctx, run-end)
				break
			}
			end = run
		}
		var al, bl int
		for _, o := range ops[start:end] {
			if o.kind != '+' {
				al++
			}
			if o.kind != '-' {
				bl++
			}
		}
		as, bs := ops[start].ai+1, ops[start].bi+1
		if al == 0 {
			as--
		}
		if bl == 0 {
			bs--
		}
		fmt.Fprintf(w, "@@ -%d,%d +%d,%d @@\n", as, al, bs, bl)
		for _, o := range ops[start:end] {
			line := o.line
			fmt.Fprintf(w, "%c%s", o.kind, line)
			if !strings.HasSuffix(line, "\n") {
				io.WriteString(w, "\n\\ No newline at end of file\n")
			}
		}
		k = end
	}
}

// AuditStatus is `status -a`: the audit against the installed database, apk letters plus X
// for deleted package files.
func AuditStatus(o *Options) ([]Change, error) {
	rules, err := LoadRules(o.Root)
	if err != nil {
		return nil, err
	}
	return Audit(o.Root, rules)
}

// PackageTo writes the overlay to dest like `lbu package`: "-" = stdout (never encrypted), a
// directory = DIR/HOST.apkovl.tar.gz[.CIPHER], else the file name. Files are written
// atomically.
func PackageTo(ctx context.Context, o *Options, dest string, stdout io.Writer, cipher string) (string, error) {
	if dest == "-" {
		data, _, err := Package(ctx, o, "")
		if err != nil {
			return "", err
		}
		_, err = stdout.Write(data)
		return "-", err
	}
	host, err := o.hostname()
	if err != nil {
		return "", err
	}
	name := host + overlay.Suffix
	if cipher != "" {
		name += "." + cipher
	}
	if dest == "" {
		wd, err := os.Getwd()
		if err != nil {
			return "", err
		}
		dest = filepath.Join(wd, name)
	} else if info, err := os.Stat(dest); err == nil && info.IsDir() {
		dest = filepath.Join(dest, name)
	}
	data, _, err := Package(ctx, o, cipher)
	if err != nil {
		return "", err
	}
	if err := writeFileAtomic(dest, data, 0644); err != nil {
		return "", err
	}
	return dest, nil
}
