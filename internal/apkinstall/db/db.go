// Package db reads and writes the apk database of a root exactly as apk-tools 2.x lays it out:
// lib/apk/db/installed, lib/apk/db/scripts.tar, lib/apk/db/triggers, lib/apk/db/lock,
// etc/apk/world and etc/apk/arch, and creates a fresh one (--initdb).
package db

import (
	"archive/tar"
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ramboot/ramboot/internal/apkinstall/extract"
	"github.com/ramboot/ramboot/internal/apkinstall/pkg"
	"github.com/ramboot/ramboot/internal/apkinstall/pkgstream"
)

// Paths inside the root.
const (
	InstalledPath = "lib/apk/db/installed"
	ScriptsPath   = "lib/apk/db/scripts.tar"
	TriggersPath  = "lib/apk/db/triggers"
	LockPath      = "lib/apk/db/lock"
	WorldPath     = "etc/apk/world"
	ArchPath      = "etc/apk/arch"
	ReposPath     = "etc/apk/repositories"
	KeysDir       = "etc/apk/keys"
)

// Entry is one installed package.
type Entry struct {
	Pkg      *pkg.Package // index fields plus r:/q:/s:
	Flags    string       // f: ("s" broken script, "x" broken xattrs, "f" broken files)
	Dirs     []extract.DirRecord
	Triggers []string // directory globs (lib/apk/db/triggers)
	Scripts  []pkgstream.Script
}

// DB is the database of one root.
type DB struct {
	Root     string
	Packages []*Entry // install order (existing ones first); written sorted by name
}

// Q1 encodes a SHA-1 the way apk writes identities and file hashes.
func Q1(sum []byte) string { return "Q1" + base64.StdEncoding.EncodeToString(sum) }

// ParseQ1 decodes a "Q1..." SHA-1.
func ParseQ1(s string) ([]byte, error) {
	v, ok := strings.CutPrefix(s, "Q1")
	if !ok {
		return nil, fmt.Errorf("checksum %q is not Q1 (SHA-1)", s)
	}
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil || len(b) != 20 {
		return nil, fmt.Errorf("checksum %q: bad base64 SHA-1", s)
	}
	return b, nil
}

// Init creates what apk 2.x's --initdb creates (apk_db_create): tmp, dev with its basic nodes,
// the database directories and empty world and installed files. Existing files are kept.
func Init(root, arch string) error {
	dirs := []struct {
		name string
		mode uint32 // raw st_mode bits: os.FileMode would need os.ModeSticky for 01000
	}{
		{"tmp", 0o1777}, {"dev", 0o755}, {"proc", 0o555}, {"etc", 0o755}, {"etc/apk", 0o755}, {"lib", 0o755},
		{"lib/apk", 0o755}, {"lib/apk/db", 0o755}, {"var", 0o755}, {"var/cache", 0o755},
		{"var/cache/apk", 0o755}, {"var/cache/misc", 0o755},
	}
	for _, d := range dirs {
		p := filepath.Join(root, d.name)
		if err := unix.Mkdir(p, d.mode); err == nil {
			if err := unix.Chmod(p, d.mode); err != nil { // umask
				return fmt.Errorf("initdb: chmod %s: %w", p, err)
			}
		} else if !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("initdb: mkdir %s: %w", p, err)
		}
	}
	nodes := []struct {
		name         string
		mode         uint32
		major, minor uint32
	}{
		{"dev/null", 0o666, 1, 3}, {"dev/zero", 0o666, 1, 5}, {"dev/random", 0o666, 1, 8},
		{"dev/urandom", 0o666, 1, 9}, {"dev/console", 0o600, 5, 1},
	}
	for _, n := range nodes {
		p := filepath.Join(root, n.name)
		// Without CAP_MKNOD (unprivileged tests) apk also carries on.
		if err := unix.Mknod(p, unix.S_IFCHR|n.mode, int(unix.Mkdev(n.major, n.minor))); err == nil {
			os.Chmod(p, os.FileMode(n.mode))
		}
	}
	for _, f := range []string{WorldPath, InstalledPath} {
		p := filepath.Join(root, f)
		fd, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return fmt.Errorf("initdb: %w", err)
		}
		fd.Close()
	}
	if _, err := os.Stat(filepath.Join(root, ArchPath)); errors.Is(err, os.ErrNotExist) && arch != "" {
		if err := WriteFileAtomic(filepath.Join(root, ArchPath), []byte(arch+"\n"), 0o644); err != nil {
			return fmt.Errorf("initdb: %w", err)
		}
	}
	return nil
}

// Lock takes apk's database lock (lib/apk/db/lock, flock exclusive, non-blocking). The returned
// function releases it.
func Lock(root string) (func(), error) {
	p := filepath.Join(root, LockPath)
	f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("database lock %s: %w", p, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("database lock %s: another apk is running: %w", p, err)
	}
	return func() { unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
}

// Read loads the installed database of root. A missing installed file is an empty database.
func Read(root string) (*DB, error) {
	d := &DB{Root: root}
	p := filepath.Join(root, InstalledPath)
	data, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return d, nil
	}
	if err != nil {
		return nil, fmt.Errorf("installed database: %w", err)
	}
	if d.Packages, err = ParseInstalled(data); err != nil {
		return nil, fmt.Errorf("installed database %s: %w", p, err)
	}
	byID := map[string]*Entry{}
	for _, e := range d.Packages {
		byID[e.Pkg.Checksum] = e
	}
	if err := readTriggers(filepath.Join(root, TriggersPath), byID); err != nil {
		return nil, err
	}
	if err := readScripts(filepath.Join(root, ScriptsPath), d.Packages); err != nil {
		return nil, err
	}
	return d, nil
}

// ParseInstalled parses lib/apk/db/installed text.
func ParseInstalled(data []byte) ([]*Entry, error) {
	var out []*Entry
	for _, rec := range bytes.Split(data, []byte("\n\n")) {
		rec = bytes.Trim(rec, "\n")
		if len(rec) == 0 {
			continue
		}
		var hdr bytes.Buffer
		e := &Entry{}
		var dir *extract.DirRecord
		var file *extract.FileRecord
		for i, line := range strings.Split(string(rec), "\n") {
			if len(line) < 2 || line[1] != ':' {
				continue
			}
			v := line[2:]
			var err error
			switch line[0] {
			case 'F':
				e.Dirs = append(e.Dirs, extract.DirRecord{Name: v, ACL: extract.ACL{Mode: 0o755}})
				dir, file = &e.Dirs[len(e.Dirs)-1], nil
			case 'M':
				if dir == nil {
					return nil, fmt.Errorf("M: before F: at record line %d", i+1)
				}
				dir.ACL, err = parseACL(v)
			case 'R':
				if dir == nil {
					return nil, fmt.Errorf("R: before F: at record line %d", i+1)
				}
				name := v
				if dir.Name != "" {
					name = dir.Name + "/" + v
				}
				dir.Files = append(dir.Files, extract.FileRecord{Name: name, ACL: extract.ACL{Mode: 0o644}})
				file = &dir.Files[len(dir.Files)-1]
			case 'a':
				if file == nil {
					return nil, fmt.Errorf("a: before R: at record line %d", i+1)
				}
				file.ACL, err = parseACL(v)
			case 'Z':
				if file == nil {
					return nil, fmt.Errorf("Z: before R: at record line %d", i+1)
				}
				file.Checksum, err = ParseQ1(v)
			case 'f':
				e.Flags = v
			default:
				hdr.WriteString(line)
				hdr.WriteByte('\n')
			}
			if err != nil {
				return nil, fmt.Errorf("line %q: %w", line, err)
			}
		}
		pkgs, err := pkg.ParseIndex(&hdr)
		if err != nil {
			return nil, err
		}
		if len(pkgs) != 1 {
			return nil, fmt.Errorf("record %q: not one package", firstLine(rec))
		}
		e.Pkg = pkgs[0]
		e.Pkg.Repo = -1
		out = append(out, e)
	}
	return out, nil
}

func firstLine(b []byte) string {
	l, _, _ := bytes.Cut(b, []byte("\n"))
	return string(l)
}

func parseACL(v string) (extract.ACL, error) {
	fs := strings.Split(v, ":")
	if len(fs) < 3 {
		return extract.ACL{}, errors.New("bad ACL")
	}
	uid, err1 := strconv.Atoi(fs[0])
	gid, err2 := strconv.Atoi(fs[1])
	mode, err3 := strconv.ParseUint(fs[2], 8, 32)
	if err := errors.Join(err1, err2, err3); err != nil {
		return extract.ACL{}, fmt.Errorf("bad ACL: %w", err)
	}
	a := extract.ACL{UID: uid, GID: gid, Mode: uint32(mode)}
	if len(fs) > 3 {
		var err error
		if a.XattrHash, err = ParseQ1(fs[3]); err != nil {
			return a, err
		}
	}
	return a, nil
}

func readTriggers(p string, byID map[string]*Entry) error {
	data, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("triggers: %w", err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		fs := strings.Fields(l)
		if len(fs) < 1 {
			continue
		}
		if e := byID[fs[0]]; e != nil {
			e.Triggers = fs[1:]
		}
	}
	return nil
}

var scriptTypes = []string{"pre-install", "post-install", "pre-deinstall", "post-deinstall", "pre-upgrade", "post-upgrade", "trigger"}

func readScripts(p string, pkgs []*Entry) error {
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("scripts: %w", err)
	}
	defer f.Close()
	byKey := map[string]*Entry{}
	for _, e := range pkgs {
		byKey[e.Pkg.Name+"-"+e.Pkg.Version+"."+e.Pkg.Checksum] = e
	}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("scripts %s: %w", p, err)
		}
		i := strings.LastIndexByte(h.Name, '.')
		if i < 0 {
			continue
		}
		e := byKey[h.Name[:i]]
		if e == nil {
			continue // script of a package no longer installed
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return fmt.Errorf("scripts %s: %w", p, err)
		}
		e.Scripts = append(e.Scripts, pkgstream.Script{Type: h.Name[i+1:], Data: data})
	}
}

// Find returns the installed entry of a package name, or nil.
func (d *DB) Find(name string) *Entry {
	for _, e := range d.Packages {
		if e.Pkg.Name == name {
			return e
		}
	}
	return nil
}

// Write writes installed, scripts.tar and triggers, each atomically (temp file + rename), so an
// interrupted write never leaves a truncated database.
func (d *DB) Write() error {
	sorted := append([]*Entry(nil), d.Packages...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Pkg.Name < sorted[j].Pkg.Name })
	var inst bytes.Buffer
	for _, e := range sorted {
		if err := writeEntry(&inst, e); err != nil {
			return err
		}
	}
	var trig bytes.Buffer
	for _, e := range d.Packages {
		if len(e.Triggers) > 0 {
			fmt.Fprintf(&trig, "%s %s\n", e.Pkg.Checksum, strings.Join(e.Triggers, " "))
		}
	}
	scripts, err := d.scriptsTar()
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{ScriptsPath, scripts}, {TriggersPath, trig.Bytes()}, {InstalledPath, inst.Bytes()}} {
		if err := WriteFileAtomic(filepath.Join(d.Root, f.name), f.data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func writeEntry(w *bytes.Buffer, e *Entry) error {
	if err := pkg.WriteIndexRecord(w, e.Pkg); err != nil {
		return err
	}
	if err := pkg.WriteInstalledFields(w, e.Pkg); err != nil {
		return err
	}
	if e.Flags != "" {
		fmt.Fprintf(w, "f:%s\n", e.Flags)
	}
	for _, d := range e.Dirs {
		fmt.Fprintf(w, "F:%s\n", d.Name)
		if a := d.ACL; a.UID != 0 || a.GID != 0 || a.Mode != 0o755 || a.XattrHash != nil {
			fmt.Fprintf(w, "M:%s\n", aclString(a))
		}
		for _, f := range d.Files {
			base := f.Name
			if d.Name != "" {
				base = strings.TrimPrefix(f.Name, d.Name+"/")
			}
			fmt.Fprintf(w, "R:%s\n", base)
			if a := f.ACL; a.UID != 0 || a.GID != 0 || a.Mode != 0o644 || a.XattrHash != nil {
				fmt.Fprintf(w, "a:%s\n", aclString(a))
			}
			if f.Checksum != nil {
				fmt.Fprintf(w, "Z:%s\n", Q1(f.Checksum))
			}
		}
	}
	w.WriteByte('\n')
	return nil
}

func aclString(a extract.ACL) string {
	s := fmt.Sprintf("%d:%d:%o", a.UID, a.GID, a.Mode)
	if a.XattrHash != nil {
		s += ":" + Q1(a.XattrHash)
	}
	return s
}

// scriptsTar renders scripts.tar byte for byte as apk 2.x does (apk_tar_write_entry): a GNU
// "ustar  " header per script, 0755, root:root, mtime = build date, name
// NAME-VER.Q1<identity>.TYPE, in install order and apk's script-type order, then two zero blocks.
func (d *DB) scriptsTar() ([]byte, error) {
	var b bytes.Buffer
	for _, e := range d.Packages {
		for _, typ := range scriptTypes {
			for _, s := range e.Scripts {
				if s.Type != typ {
					continue
				}
				name := fmt.Sprintf("%s-%s.%s.%s", e.Pkg.Name, e.Pkg.Version, e.Pkg.Checksum, typ)
				if len(name) >= 100 {
					return nil, fmt.Errorf("scripts.tar: entry name %q too long", name)
				}
				b.Write(tarHeader(name, int64(len(s.Data)), e.Pkg.BuildTime))
				b.Write(s.Data)
				if pad := len(s.Data) % 512; pad != 0 {
					b.Write(make([]byte, 512-pad))
				}
			}
		}
	}
	b.Write(make([]byte, 1024))
	return b.Bytes(), nil
}

// tarHeader is apk's fixed-layout header: octal fields zero-padded, size and mtime without a
// terminating NUL, mode/uid/gid with one, checksum "%06o\0 ".
func tarHeader(name string, size, mtime int64) []byte {
	h := make([]byte, 512)
	copy(h[0:100], name)
	copy(h[100:108], fmt.Sprintf("%07o\x00", 0o755))
	copy(h[108:116], "0000000\x00")
	copy(h[116:124], "0000000\x00")
	copy(h[124:136], fmt.Sprintf("%012o", size))
	copy(h[136:148], fmt.Sprintf("%012o", mtime))
	h[156] = '0'
	copy(h[257:265], "ustar  \x00")
	copy(h[265:297], "root")
	copy(h[297:329], "root")
	copy(h[148:156], "        ")
	sum := 0
	for _, c := range h {
		sum += int(c)
	}
	copy(h[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return h
}

// WriteFileAtomic writes data to a temporary file beside p and renames it over p.
func WriteFileAtomic(p string, data []byte, mode os.FileMode) error {
	tmp := p + ".ramboot-new"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", p, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

// ReadWorld reads etc/apk/world (entries separated by any whitespace). Missing = empty.
func ReadWorld(root string) ([]string, error) {
	data, err := os.ReadFile(filepath.Join(root, WorldPath))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("world: %w", err)
	}
	return strings.Fields(string(data)), nil
}

// WriteWorld writes etc/apk/world, one entry per line, sorted as apk sorts it: by the package
// name (ignoring a leading "!" and what follows the name), case-insensitively, then bytewise.
func WriteWorld(root string, world []string) error {
	w := append([]string(nil), world...)
	name := func(s string) string {
		s = strings.TrimPrefix(s, "!")
		if i := strings.IndexAny(s, "@<>=~"); i >= 0 {
			s = s[:i]
		}
		return s
	}
	sort.SliceStable(w, func(i, j int) bool {
		ni, nj := name(w[i]), name(w[j])
		if a, b := strings.ToLower(ni), strings.ToLower(nj); a != b {
			return a < b
		}
		return ni < nj
	})
	var b strings.Builder
	for _, e := range w {
		b.WriteString(e)
		b.WriteByte('\n')
	}
	return WriteFileAtomic(filepath.Join(root, WorldPath), []byte(b.String()), 0o644)
}

// ReadArch returns the first line of etc/apk/arch, or "".
func ReadArch(root string) string {
	data, err := os.ReadFile(filepath.Join(root, ArchPath))
	if err != nil {
		return ""
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// RepoLine is one line of a repositories file.
type RepoLine struct{ Tag, URL string }

// ReadRepositories parses a repositories file ("[@tag] URL" per line, # comments). Missing = none.
func ReadRepositories(p string) ([]RepoLine, error) {
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("repositories file: %w", err)
	}
	defer f.Close()
	var out []RepoLine
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		fs := strings.Fields(sc.Text())
		if len(fs) == 0 || strings.HasPrefix(fs[0], "#") {
			continue
		}
		var r RepoLine
		if strings.HasPrefix(fs[0], "@") {
			r.Tag = fs[0][1:]
			fs = fs[1:]
		}
		if len(fs) != 1 {
			return nil, fmt.Errorf("repositories file %s line %d: want [@tag] REPO", p, n)
		}
		r.URL = fs[0]
		out = append(out, r)
	}
	return out, sc.Err()
}
