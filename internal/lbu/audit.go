package lbu

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// Change is one path that differs from the installed packages, as `apk audit --backup
// --recursive --check-permissions` reports it, plus deletions (which apk's backup mode hides).
type Change struct {
	Path   string // root-relative; directories end in "/"
	Reason byte   // A new/always, U content or symlink target, M file mode/owner, m dir mode/owner, d new directory, e unreadable, X package file deleted
	Detail string // human-readable what changed (mode, owner, target)
}

func (c Change) String() string { return string(c.Reason) + " " + c.Path }

// Audit compares root with its installed database under rules and returns the changes in
// sorted path order. It is a native equivalent of
// `apk audit --backup --recursive --check-permissions` (the set of paths matches real apk; the
// order is sorted instead of readdir order). X entries (deleted package files in protected
// areas) are extra and are never archived.
func Audit(root string, rules []Rule) ([]Change, error) {
	db, err := readInstalledDB(root)
	if err != nil {
		return nil, err
	}
	a := &auditor{root: root, db: db, seen: map[string]bool{}}
	if err := a.walk("", rootRules(rules)); err != nil {
		return nil, err
	}
	a.missing(rules)
	sort.Slice(a.out, func(i, j int) bool { return a.out[i].Path < a.out[j].Path })
	return a.out, nil
}

type auditor struct {
	root string
	db   *installedDB
	out  []Change
	seen map[string]bool // dirs walked (for deletion reporting)
}

func (a *auditor) add(path string, reason byte, detail string) {
	a.out = append(a.out, Change{Path: path, Reason: reason, Detail: detail})
}

// walk audits the directory rel ("" = root) whose protection state is d.
func (a *auditor) walk(rel string, d dirRules) error {
	a.seen[rel] = true
	full := filepath.Join(a.root, rel)
	ents, err := os.ReadDir(full)
	if err != nil {
		if rel == "" {
			return fmt.Errorf("audit %s: %w", a.root, err)
		}
		a.add(rel+"/", 'e', err.Error())
		return nil
	}
	for _, e := range ents {
		name := e.Name()
		p := joinRel(rel, name)
		info, err := os.Lstat(filepath.Join(full, name))
		if err != nil {
			a.add(p, 'e', err.Error())
			continue
		}
		if info.IsDir() {
			c := d.child(name)
			if !c.mode.none() {
				if r, detail := a.auditDir(p, info); r != 0 {
					a.add(p+"/", r, detail)
				}
			}
			if c.protectedChildren {
				if err := a.walk(p, c); err != nil {
					return err
				}
			}
			continue
		}
		mode := d.fileMode(name)
		dbf := a.db.files[p]
		var reason byte
		switch mode {
		case ModeNone, ModeIgnore:
			continue
		case ModeSymlinksOnly:
			if info.Mode()&os.ModeSymlink == 0 {
				continue
			}
		case ModeAll:
			reason = 'A'
		}
		if (dbf == nil || reason == 'A') && strings.HasSuffix(name, ".apk-new") {
			continue
		}
		detail := ""
		if reason == 0 {
			reason, detail = a.auditFile(p, info, dbf)
		}
		if reason != 0 {
			a.add(p, reason, detail)
		}
	}
	return nil
}

func (a *auditor) auditDir(p string, info os.FileInfo) (byte, string) {
	dd := a.db.dirs[p]
	if dd == nil || dd.owners == 0 {
		return 'd', ""
	}
	st := info.Sys().(*syscall.Stat_t)
	if uint32(st.Mode)&07777 != dd.acl.mode || int(st.Uid) != dd.acl.uid || int(st.Gid) != dd.acl.gid {
		return 'm', fmt.Sprintf("mode %04o→%04o owner %d:%d→%d:%d", dd.acl.mode, st.Mode&07777, dd.acl.uid, dd.acl.gid, st.Uid, st.Gid)
	}
	return 0, ""
}

// auditFile is apk's audit_file: unowned → A; checksum differs → U (symlinks: checksum of the
// target; a symlink without a checksum is always U); then mode/owner → M.
func (a *auditor) auditFile(p string, info os.FileInfo, dbf *dbFile) (byte, string) {
	if dbf == nil {
		return 'A', ""
	}
	full := filepath.Join(a.root, p)
	isLink := info.Mode()&os.ModeSymlink != 0
	if dbf.csum != nil {
		h := newHash(dbf.alg)
		if isLink {
			t, err := os.Readlink(full)
			if err != nil {
				return 'e', err.Error()
			}
			io.WriteString(h, t)
		} else if info.Mode().IsRegular() {
			f, err := os.Open(full)
			if err != nil {
				return 'e', err.Error()
			}
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return 'e', err.Error()
			}
		}
		if !bytes.Equal(h.Sum(nil), dbf.csum) {
			if isLink {
				t, _ := os.Readlink(full)
				return 'U', "symlink target now " + t
			}
			return 'U', "content differs from package " + dbf.pkg
		}
	} else if isLink {
		return 'U', "symlink without recorded checksum"
	}
	// Symlinks too: apk records them as 0777 with their owner (a:0:0:777) and reports a chown.
	st := info.Sys().(*syscall.Stat_t)
	if uint32(st.Mode)&07777 != dbf.acl.mode || int(st.Uid) != dbf.acl.uid || int(st.Gid) != dbf.acl.gid {
		return 'M', fmt.Sprintf("mode %04o→%04o owner %d:%d→%d:%d", dbf.acl.mode, st.Mode&07777, dbf.acl.uid, dbf.acl.gid, st.Uid, st.Gid)
	}
	return 0, ""
}

// missing reports package files that were deleted from walked, protected directories. apk's
// backup mode never lists them (and lbu cannot persist a deletion: the package reinstalls the
// file at boot), but status shows them so the user knows.
func (a *auditor) missing(rules []Rule) {
	for p, f := range a.db.files {
		dir, _ := filepath.Split(p)
		dir = strings.TrimSuffix(dir, "/")
		if !a.seen[dir] {
			continue
		}
		if _, err := os.Lstat(filepath.Join(a.root, p)); !os.IsNotExist(err) {
			continue
		}
		if ModeOf(rules, p, false).none() {
			continue
		}
		a.add(p, 'X', "deleted (package "+f.pkg+")")
	}
}
