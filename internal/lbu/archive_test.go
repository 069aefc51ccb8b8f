package lbu

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Explicit includes of existing files are always archived (alpine-conf 2026 behaviour): files
// directly under / (apk cannot protect them) and files identical to the package version.
func TestFileListExplicitIncludes(t *testing.T) {
	root := minirootfs(t)
	os.WriteFile(filepath.Join(root, "top.conf"), []byte("x"), 0644)
	os.Symlink("/nowhere", filepath.Join(root, "toplink"))
	if _, err := UpdateList(root, '+', []string{"/top.conf", "/toplink", "/etc/motd", "/missing", "/etc/*.glob"}, false); err != nil {
		t.Fatal(err)
	}
	files, err := FileList(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"top.conf", "toplink", "etc/motd"} {
		if !slices.Contains(files, want) {
			t.Errorf("FileList() lacks explicitly included %s: %q", want, files)
		}
	}
	for _, notWant := range []string{"missing", "etc/*.glob"} {
		if slices.Contains(files, notWant) {
			t.Errorf("FileList() contains %s, which does not exist", notWant)
		}
	}
	if !slices.IsSorted(files) {
		t.Errorf("FileList() is not sorted: %q", files)
	}
}

// Archives are reproducible (sorted members, zero gzip time) and hardlinks between listed files
// are stored as links.
func TestBuildArchiveReproducibleAndHardlinks(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc/d"), 0750)
	os.WriteFile(filepath.Join(root, "etc/a"), []byte("same"), 0640)
	os.Link(filepath.Join(root, "etc/a"), filepath.Join(root, "etc/b"))
	os.Symlink("a", filepath.Join(root, "etc/l"))
	files := []string{"etc/a", "etc/b", "etc/d/", "etc/l"}
	gz1, man, err := BuildArchive(root, files)
	if err != nil {
		t.Fatal(err)
	}
	gz2, _, _ := BuildArchive(root, files)
	if !bytes.Equal(gz1, gz2) {
		t.Errorf("BuildArchive() twice gives different bytes, want reproducible output")
	}
	got, err := ReadManifest(gz1, 1<<20, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := sameManifest(man, got); err != nil {
		t.Errorf("ReadManifest(BuildArchive()) differs from its manifest: %v", err)
	}
	want := map[string]string{"etc/a": "0 0640", "etc/b": "1 etc/a", "etc/d/": "5 0750", "etc/l": "2 a"}
	gotDesc := map[string]string{}
	for n, e := range got {
		switch e.Type {
		case tar.TypeLink, tar.TypeSymlink:
			gotDesc[n] = string(e.Type) + " " + e.Link
		default:
			gotDesc[n] = fmt.Sprintf("%c %04o", e.Type, e.Mode)
		}
	}
	if d := cmp.Diff(want, gotDesc); d != "" {
		t.Errorf("archive members (-want +got):\n%s", d)
	}
}
