package overlay

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// entriesFromBytes turns fuzz input into tar entries over a tiny alphabet of path pieces chosen
// to provoke escapes: "..", ".", absolute names, symlinks to outside, hardlinks, replacements.
func entriesFromBytes(data []byte) []entry {
	pieces := []string{"a", "b", "..", ".", "", "etc", "/", "c"}
	targets := []string{"/", "..", "../..", "a", "/tmp", "../outside", "b/..", "a/b"}
	var out []entry
	for len(data) >= 4 && len(out) < 16 {
		kind, n, t, extra := data[0]%4, int(data[1]%4)+1, data[2], data[3]
		data = data[4:]
		var parts []string
		for i := 0; i < n; i++ {
			parts = append(parts, pieces[(int(t)>>(2*i)+int(extra)*i)%len(pieces)])
		}
		name := strings.Join(parts, "/")
		if extra&1 == 1 {
			name = "/" + name
		}
		target := targets[int(extra>>1)%len(targets)]
		var h tar.Header
		switch kind {
		case 0:
			h = tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0644}
		case 1:
			h = tar.Header{Name: name + "/", Typeflag: tar.TypeDir, Mode: 0755}
		case 2:
			h = tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target}
		case 3:
			h = tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: target}
		}
		out = append(out, entry{h, "x"})
	}
	return out
}

// FuzzRestoreStaysInRoot: whatever the archive, nothing outside the root is created or changed.
func FuzzRestoreStaysInRoot(f *testing.F) {
	if os.Geteuid() != 0 {
		f.Skip("prerequisite missing: root")
	}
	f.Add([]byte{2, 1, 0, 10, 0, 2, 0, 0})
	f.Add([]byte{2, 1, 5, 2, 0, 2, 5, 0, 3, 1, 1, 6})
	f.Add([]byte{1, 2, 2, 1, 0, 3, 2, 1, 2, 1, 0, 4})
	f.Fuzz(func(t *testing.T, data []byte) {
		base := t.TempDir()
		root := filepath.Join(base, "r", "root")
		outside := filepath.Join(base, "outside")
		os.MkdirAll(root, 0755)
		os.MkdirAll(outside, 0755)
		os.WriteFile(filepath.Join(outside, "keep"), []byte("k"), 0644)
		ovl := filepath.Join(base, "f.apkovl.tar.gz")
		os.WriteFile(ovl, tolerantTarGz(entriesFromBytes(data)), 0644)
		if _, err := Restore(ovl, root, RestoreOptions{}); err != nil {
			return // refusing the whole archive is fine
		}
		// Only root's subtree, outside/keep and the overlay file may exist under base.
		filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if p == root || strings.HasPrefix(p, root+"/") {
				return nil
			}
			switch p {
			case base, filepath.Join(base, "r"), outside, filepath.Join(outside, "keep"), ovl:
				return nil
			}
			t.Errorf("Restore created %s outside the root", p)
			return nil
		})
		if b, _ := os.ReadFile(filepath.Join(outside, "keep")); string(b) != "k" {
			t.Errorf("Restore changed outside/keep to %q", b)
		}
		if fi, _ := os.Stat(outside); fi.Mode().Perm() != 0755 {
			t.Errorf("Restore changed the mode of outside to %v", fi.Mode())
		}
	})
}

// tolerantTarGz is makeTarGz that skips entries archive/tar cannot encode.
func tolerantTarGz(entries []entry) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		h := e.hdr
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if tw.WriteHeader(&h) != nil {
			continue
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(e.body))
		}
	}
	tw.Close()
	zw.Close()
	return b.Bytes()
}
