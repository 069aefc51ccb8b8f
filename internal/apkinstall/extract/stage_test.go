package extract_test

import (
	"archive/tar"
	"bytes"
	"crypto/sha1"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ramboot/ramboot/internal/apkinstall/extract"
	"github.com/ramboot/ramboot/internal/apkinstall/pkgstream"
)

// stageAll stages every stageable file as a decoder would.
func stageAll(t *testing.T, x *extract.Extractor, files []pkgstream.File) []int {
	t.Helper()
	fds := make([]int, len(files))
	for i := range files {
		fds[i] = -1
		if x.Stageable(&files[i]) {
			fd, err := x.Stage(&files[i], nil)
			must(t, err)
			fds[i] = fd
			files[i].Data = nil // the writer must not need it
		}
	}
	return fds
}

func sum(data string) []byte {
	s := sha1.Sum([]byte(data))
	return s[:]
}

// A large file is staged in chunks, with yield called between them, and reads back whole.
func TestStageYield(t *testing.T) {
	needRoot(t)
	root := t.TempDir()
	x, err := extract.Open(root, nil)
	must(t, err)
	defer x.Close()
	if !x.CanStage() {
		t.Skip("prerequisite missing: O_TMPFILE on the temp directory's file system")
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), (600<<10)/16)
	f := file("big", string(data), 0o644)
	f.Checksum = sum(string(data))
	calls := 0
	fd, err := x.Stage(&f, func() { calls++ })
	must(t, err)
	defer unix.Close(fd)
	got := make([]byte, len(data)+1)
	n, err := unix.Pread(fd, got, 0)
	must(t, err)
	if !bytes.Equal(got[:n], data) {
		t.Errorf("Stage(600 KiB) wrote %d bytes, want the %d given", n, len(data))
	}
	// 600 KiB in 256 KiB writes: three writes, a yield between each two.
	if calls != 2 {
		t.Errorf("Stage(600 KiB) yielded %d times, want 2", calls)
	}
}

// Staged files end up exactly as written ones: owner by name, setuid after chown, mode,
// mtime, content, hardlinks to them; an existing file is replaced; every descriptor is closed
// once its file is in place; a name on another file system inside the root (EXDEV for the
// link) gets a copy with the same metadata.
func TestInstallStaged(t *testing.T) {
	needRoot(t)
	root := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0::/root:/bin/sh\nalice:x:1234:4321::/:/bin/false\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(root, "etc/group"), []byte("root:x:0:\nstaff:x:4321:\n"), 0o644))
	must(t, os.MkdirAll(filepath.Join(root, "srv/mnt"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "srv/old"), []byte("previous"), 0o644))
	if err := unix.Mount("tmpfs", filepath.Join(root, "srv/mnt"), "tmpfs", 0, "mode=0755"); err != nil {
		t.Skipf("prerequisite missing: mounting a tmpfs (%v)", err)
	}
	defer unix.Unmount(filepath.Join(root, "srv/mnt"), unix.MNT_DETACH)

	x, err := extract.Open(root, nil)
	must(t, err)
	defer x.Close()
	if !x.CanStage() {
		t.Fatal("CanStage() = false on a tmpfs-less temp dir as root; want true")
	}
	mk := func(name, data string, mode uint32, owner string) pkgstream.File {
		f := file(name, data, mode)
		f.Uname, f.Checksum = owner, sum(data)
		return f
	}
	files := []pkgstream.File{
		dir("srv"),
		mk("srv/owned", "owned content", 0o640, "alice"),
		mk("srv/suid", "setuid content", 0o4755, "alice"),
		mk("srv/plain", "plain content", 0o755, "root"),
		mk("srv/old", "new content", 0o644, "root"),
		dir("srv/mnt"),
		mk("srv/mnt/across", "across a mount", 0o750, "alice"),
		{Name: "srv/hard", Type: tar.TypeLink, Linkname: "srv/plain", Uname: "root", Gname: "root"},
	}
	want := map[string]string{}
	for _, f := range files {
		if f.Type == tar.TypeReg {
			want[f.Name] = string(f.Data)
		}
	}
	staged := stageAll(t, x, files)
	_, err = x.InstallStaged("test-1", files, staged)
	must(t, err)
	for i, fd := range staged {
		if fd >= 0 {
			t.Errorf("staged descriptor of %s still open after install", files[i].Name)
			unix.Close(fd)
		}
	}
	tests := []struct {
		path     string
		mode     uint32
		uid, gid uint32
	}{
		{"srv/owned", unix.S_IFREG | 0o640, 1234, 0},
		{"srv/suid", unix.S_IFREG | 0o4755, 1234, 0},
		{"srv/plain", unix.S_IFREG | 0o755, 0, 0},
		{"srv/old", unix.S_IFREG | 0o644, 0, 0},
		{"srv/mnt/across", unix.S_IFREG | 0o750, 1234, 0},
	}
	for _, tc := range tests {
		p := filepath.Join(root, tc.path)
		st := stat(t, p)
		if st.Mode != tc.mode || st.Uid != tc.uid || st.Gid != tc.gid || st.Mtim.Sec != 1600000000 {
			t.Errorf("%s: mode %o uid %d gid %d mtime %d, want %o %d %d 1600000000", tc.path, st.Mode, st.Uid, st.Gid, st.Mtim.Sec, tc.mode, tc.uid, tc.gid)
		}
		if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, []byte(want[tc.path])) {
			t.Errorf("%s content = %q, %v; want %q", tc.path, got, err, want[tc.path])
		}
	}
	if a, b := stat(t, filepath.Join(root, "srv/plain")), stat(t, filepath.Join(root, "srv/hard")); a.Ino != b.Ino {
		t.Errorf("srv/hard is not a hardlink of the staged srv/plain")
	}
	if st := stat(t, filepath.Join(root, "srv/plain")); st.Nlink != 2 {
		t.Errorf("srv/plain has %d links, want 2 (its name and srv/hard)", st.Nlink)
	}
	ents, _ := os.ReadDir(filepath.Join(root, "srv"))
	for _, e := range ents {
		if bytes.Contains([]byte(e.Name()), []byte(".apk.")) {
			t.Errorf("temporary %s left in srv", e.Name())
		}
	}
}

// Protected paths, overlay files, files without a checksum and empty files are never staged:
// the writer compares or keeps their contents.
func TestStageable(t *testing.T) {
	root := t.TempDir()
	x, err := extract.OpenWith(root, extract.Options{Overlay: []string{"etc/hostname"}})
	must(t, err)
	defer x.Close()
	reg := func(name, data string) pkgstream.File {
		f := file(name, data, 0o644)
		f.Checksum = sum(data)
		return f
	}
	noSum := file("usr/bin/x", "x", 0o755)
	tests := []struct {
		f    pkgstream.File
		want bool
	}{
		{reg("usr/bin/tool", "binary"), true},
		{reg("etc/motd", "protected"), false},
		{reg("etc/hostname", "overlay"), false},
		{noSum, false},
		{reg("usr/share/empty", ""), false},
		{dir("usr/lib"), false},
		{pkgstream.File{Name: "usr/bin/l", Type: tar.TypeSymlink, Linkname: "tool", Checksum: sum("tool")}, false},
	}
	for _, tc := range tests {
		if got := x.Stageable(&tc.f); got != tc.want {
			t.Errorf("Stageable(%s) = %v, want %v", tc.f.Name, got, tc.want)
		}
	}
}
