package extract_test

import (
	"archive/tar"
	"crypto/sha1"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ramboot/ramboot/internal/apkinstall/extract"
	"github.com/ramboot/ramboot/internal/apkinstall/pkgstream"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("prerequisite missing: root (chown to other users, mknod)")
	}
}

func dir(name string) pkgstream.File {
	return pkgstream.File{Name: name, Type: tar.TypeDir, Mode: 0o755, Uname: "root", Gname: "root"}
}

func file(name, data string, mode uint32) pkgstream.File {
	return pkgstream.File{Name: name, Type: tar.TypeReg, Mode: mode, Uname: "root", Gname: "root", Data: []byte(data), ModTime: time.Unix(1600000000, 0)}
}

func stat(t *testing.T, p string) *syscall.Stat_t {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		t.Fatalf("lstat %s: %v", p, err)
	}
	return &st
}

func TestInstallMetadata(t *testing.T) {
	needRoot(t)
	root := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0::/root:/bin/sh\nalice:x:1234:4321::/:/bin/false\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(root, "etc/group"), []byte("root:x:0:\nstaff:x:4321:\n"), 0o644))
	owned := file("srv/owned", "a", 0o640)
	owned.Uname, owned.Gname = "alice", "staff"
	unknown := file("srv/unknown", "b", 0o644)
	unknown.Uname, unknown.Gname, unknown.UID, unknown.GID = "nobody-here", "nogroup-here", 77, 88
	suid := file("srv/suid", "c", 0o4755)
	suid.Uname = "alice"
	sdir := dir("srv/setgid")
	sdir.Mode, sdir.Gname = 0o2775, "staff"
	files := []pkgstream.File{
		dir("srv"), owned, unknown, suid, sdir,
		{Name: "srv/link", Type: tar.TypeSymlink, Linkname: "/srv/owned", Mode: 0o777, Uname: "root", Gname: "root"},
		{Name: "srv/hard", Type: tar.TypeLink, Linkname: "srv/owned", Uname: "root", Gname: "root"},
		{Name: "srv/fifo", Type: tar.TypeFifo, Mode: 0o600, Uname: "root", Gname: "root"},
		{Name: "srv/null", Type: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3, Uname: "root", Gname: "root"},
	}
	x, err := extract.Open(root, nil)
	must(t, err)
	defer x.Close()
	res, err := x.Install("test-1", files)
	must(t, err)

	tests := []struct {
		path     string
		mode     uint32
		uid, gid uint32
	}{
		{"srv/owned", unix.S_IFREG | 0o640, 1234, 4321},
		{"srv/unknown", unix.S_IFREG | 0o644, 77, 88},
		{"srv/suid", unix.S_IFREG | 0o4755, 1234, 0},
		{"srv/setgid", unix.S_IFDIR | 0o2775, 0, 4321},
		{"srv/fifo", unix.S_IFIFO | 0o600, 0, 0},
		{"srv/null", unix.S_IFCHR | 0o666, 0, 0},
	}
	for _, tc := range tests {
		st := stat(t, filepath.Join(root, tc.path))
		if st.Mode != tc.mode || st.Uid != tc.uid || st.Gid != tc.gid {
			t.Errorf("%s: mode %o uid %d gid %d, want %o %d %d", tc.path, st.Mode, st.Uid, st.Gid, tc.mode, tc.uid, tc.gid)
		}
	}
	if st := stat(t, filepath.Join(root, "srv/owned")); st.Mtim.Sec != 1600000000 {
		t.Errorf("srv/owned mtime = %d, want 1600000000", st.Mtim.Sec)
	}
	if a, b := stat(t, filepath.Join(root, "srv/owned")), stat(t, filepath.Join(root, "srv/hard")); a.Ino != b.Ino {
		t.Errorf("srv/hard is not a hardlink of srv/owned")
	}
	if got, _ := os.Readlink(filepath.Join(root, "srv/link")); got != "/srv/owned" {
		t.Errorf("srv/link -> %q, want /srv/owned", got)
	}
	if st := stat(t, filepath.Join(root, "srv/null")); st.Rdev != unix.Mkdev(1, 3) {
		t.Errorf("srv/null rdev = %x, want 1:3", st.Rdev)
	}
	if len(res.Dirs) != 2 || res.Dirs[0].Name != "srv" || len(res.Dirs[0].Files) != 7 || res.Dirs[1].Name != "srv/setgid" {
		t.Errorf("Install().Dirs = %+v, want srv (7 files), srv/setgid", res.Dirs)
	}
	if acl := res.Dirs[0].Files[0].ACL; acl.UID != 1234 || acl.GID != 4321 || acl.Mode != 0o640 {
		t.Errorf("recorded ACL of srv/owned = %+v, want 1234:4321:640", acl)
	}
}

func TestInstallXattrs(t *testing.T) {
	root := t.TempDir()
	f := file("x", "data", 0o644)
	f.Xattrs = []pkgstream.Xattr{{Name: "user.ramboot", Value: []byte("v1")}}
	x, err := extract.Open(root, nil)
	must(t, err)
	defer x.Close()
	res, err := x.Install("test-1", []pkgstream.File{f})
	must(t, err)
	buf := make([]byte, 16)
	n, err := unix.Getxattr(filepath.Join(root, "x"), "user.ramboot", buf)
	switch {
	case err == nil && string(buf[:n]) != "v1":
		t.Errorf("xattr user.ramboot = %q, want v1", buf[:n])
	case err != nil && !res.BrokenXattrs:
		t.Errorf("xattr not set (%v) and not reported as broken", err)
	}
	if res.Dirs[0].Files[0].ACL.XattrHash == nil {
		t.Errorf("recorded ACL has no xattr hash")
	}
}

func TestOverlayProtectedAndReplace(t *testing.T) {
	root := t.TempDir()
	for p, c := range map[string]string{
		"etc/hostname":      "from-overlay\n", // overlay path: kept, no .apk-new
		"etc/motd":          "local\n",        // protected, unowned, differs: .apk-new
		"etc/same":          "same\n",         // protected, identical: nothing written
		"etc/owned":         "old\n",          // protected, owned and unmodified: replaced
		"etc/apk/x":         "local\n",        // !etc/apk: replaced
		"usr/share/plain":   "local\n",        // unprotected: replaced
		"etc/init.d/script": "local\n",        // @etc/init.d: regular files not protected
	} {
		must(t, os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755))
		must(t, os.WriteFile(filepath.Join(root, p), []byte(c), 0o644))
	}
	oldSum := sha1.Sum([]byte("old\n"))
	x, err := extract.OpenWith(root, extract.Options{
		Overlay: []string{"/etc/hostname", "./etc/other"},
		Owned: func(name string) []byte {
			if name == "etc/owned" {
				return oldSum[:]
			}
			return nil
		},
	})
	must(t, err)
	defer x.Close()
	files := []pkgstream.File{dir("etc"), dir("etc/apk"), dir("etc/init.d"), dir("usr"), dir("usr/share")}
	for _, n := range []string{"etc/hostname", "etc/motd", "etc/owned", "etc/apk/x", "usr/share/plain", "etc/init.d/script"} {
		files = append(files, file(n, "new\n", 0o644))
	}
	files = append(files, file("etc/same", "same\n", 0o644))
	_, err = x.Install("test-1", files)
	must(t, err)
	want := map[string]string{
		"etc/hostname": "from-overlay\n", "etc/motd": "local\n", "etc/motd.apk-new": "new\n",
		"etc/same": "same\n", "etc/owned": "new\n", "etc/apk/x": "new\n", "usr/share/plain": "new\n",
		"etc/init.d/script": "new\n",
	}
	for p, c := range want {
		if got, err := os.ReadFile(filepath.Join(root, p)); string(got) != c {
			t.Errorf("%s = %q (%v), want %q", p, got, err, c)
		}
	}
	for _, p := range []string{"etc/hostname.apk-new", "etc/same.apk-new", "etc/owned.apk-new"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
			t.Errorf("%s written, want none", p)
		}
	}
	ents, _ := os.ReadDir(filepath.Join(root, "etc"))
	if len(ents) != 7 { // hostname motd motd.apk-new same owned apk init.d
		t.Errorf("etc has %d entries (temporary files left?), want 7", len(ents))
	}
}

// A symlink another package planted (even an absolute one, or one climbing with ..) is
// resolved inside the root: files written through it never land outside.
func TestSymlinkedDirectoryStaysInRoot(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "root")
	must(t, os.MkdirAll(filepath.Join(root, "var"), 0o755))
	must(t, os.MkdirAll(filepath.Join(root, "run"), 0o755))
	must(t, os.Symlink("/run", filepath.Join(root, "var/run")))
	must(t, os.Symlink("../../..", filepath.Join(root, "var/up")))
	x, err := extract.Open(root, nil)
	must(t, err)
	defer x.Close()
	_, err = x.Install("test-1", []pkgstream.File{dir("var"), dir("var/run"), file("var/run/pidfile", "1", 0o644), dir("var/up"), file("var/up/escaped", "1", 0o644)})
	must(t, err)
	if _, err := os.Stat(filepath.Join(root, "run/pidfile")); err != nil {
		t.Errorf("var/run/pidfile did not land in ROOT/run: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "escaped")); err != nil {
		t.Errorf("var/up/escaped did not land in ROOT: %v", err)
	}
	for _, p := range []string{filepath.Join(base, "escaped"), "/escaped", "/run/pidfile"} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s written outside the root", p)
		}
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name  string
		files []pkgstream.File
		ok    bool
	}{
		{"plain", []pkgstream.File{dir("a"), file("a/b", "", 0o644)}, true},
		{"top-level file", []pkgstream.File{file("a", "", 0o644)}, true},
		{"no dirent", []pkgstream.File{file("a/b", "", 0o644)}, false},
		{"dotdot", []pkgstream.File{dir("a"), file("a/../b", "", 0o644)}, false},
		{"dot", []pkgstream.File{dir("a"), file("a/./b", "", 0o644)}, false},
		{"absolute", []pkgstream.File{file("/a", "", 0o644)}, false},
		{"control char", []pkgstream.File{file("a\nb", "", 0o644)}, false},
		{"empty component", []pkgstream.File{dir("a"), file("a//b", "", 0o644)}, false},
	}
	for _, tc := range tests {
		err := extract.Check("p-1", tc.files)
		if (err == nil) != tc.ok {
			t.Errorf("Check(%s) = %v, want ok %v", tc.name, err, tc.ok)
		}
		if err != nil && !errors.Is(err, extract.ErrMalicious) {
			t.Errorf("Check(%s) = %v, want ErrMalicious", tc.name, err)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A package that fails halfway leaves none of the files it created.
func TestInstallFailureUndoes(t *testing.T) {
	root := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(root, "srv/blocker"), 0o755)) // a directory where a file goes
	x, err := extract.Open(root, nil)
	must(t, err)
	defer x.Close()
	_, err = x.Install("test-1", []pkgstream.File{dir("srv"), file("srv/a", "a", 0o644), file("srv/b", "b", 0o644), file("srv/blocker", "x", 0o644)})
	if err == nil || !strings.Contains(err.Error(), "test-1") || !strings.Contains(err.Error(), "srv/blocker") {
		t.Fatalf("Install() error = %v, want one naming test-1 and srv/blocker", err)
	}
	for _, p := range []string{"srv/a", "srv/b"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
			t.Errorf("%s left behind by the failed package", p)
		}
	}
}

// ReloadIDs sees a changed etc/passwd even when its size stayed the same (a script rewrote a
// uid in place), and owners then follow it.
func TestReloadIDsSeesChanges(t *testing.T) {
	needRoot(t)
	root := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	write := func(uid string) {
		must(t, os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0::/root:/bin/sh\nalice:x:"+uid+":0::/:/bin/false\n"), 0o644))
	}
	write("1234")
	x, err := extract.Open(root, nil)
	must(t, err)
	defer x.Close()
	owned := func(name string) pkgstream.File {
		f := file(name, "x", 0o644)
		f.Uname = "alice"
		return f
	}
	_, err = x.Install("a-1", []pkgstream.File{dir("srv"), owned("srv/a")})
	must(t, err)
	write("4321")
	x.ReloadIDs()
	_, err = x.Install("b-1", []pkgstream.File{dir("srv"), owned("srv/b")})
	must(t, err)
	x.ReloadIDs() // unchanged: the same owners
	_, err = x.Install("c-1", []pkgstream.File{dir("srv"), owned("srv/c")})
	must(t, err)
	for name, want := range map[string]uint32{"srv/a": 1234, "srv/b": 4321, "srv/c": 4321} {
		if st := stat(t, filepath.Join(root, name)); st.Uid != want {
			t.Errorf("owner of %s = %d, want %d", name, st.Uid, want)
		}
	}
}
