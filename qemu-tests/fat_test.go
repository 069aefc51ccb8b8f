package qemutests

import (
	"io"
	"os"
	"sort"
	"testing"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/filesystem"
)

// openFAT opens the FAT filesystem of a media image built by `ramboot media --format fat`:
// the whole disk, or else its first partition.
func openFAT(t *testing.T, img string, writable bool) (filesystem.FileSystem, func()) {
	t.Helper()
	mode := diskfs.ReadOnly
	if writable {
		mode = diskfs.ReadWriteExclusive
	}
	d, err := diskfs.Open(img, diskfs.WithOpenMode(mode))
	if err != nil {
		t.Fatalf("open media %s: %v", img, err)
	}
	fs, err := d.GetFilesystem(0)
	if err != nil {
		var err1 error
		if fs, err1 = d.GetFilesystem(1); err1 != nil {
			d.Close()
			t.Fatalf("media %s: no FAT filesystem on the disk (%v) or its first partition (%v)", img, err, err1)
		}
	}
	return fs, func() { d.Close() }
}

// fatList returns the names in the media's top-level directory.
func fatList(t *testing.T, img string) []string {
	t.Helper()
	fs, done := openFAT(t, img, false)
	defer done()
	ents, err := fs.ReadDir(".") // io/fs path syntax: "/" is EINVAL
	if err != nil {
		t.Fatalf("media %s: list /: %v", img, err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// fatRead returns a top-level file of the media.
func fatRead(t *testing.T, img, name string) []byte {
	t.Helper()
	fs, done := openFAT(t, img, false)
	defer done()
	f, err := fs.OpenFile("/"+name, os.O_RDONLY)
	if err != nil {
		t.Fatalf("media %s: open %s: %v", img, name, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatalf("media %s: read %s: %v", img, name, err)
	}
	return b
}

// fatWrite adds (or replaces) a top-level file of the media, in one write (go-diskfs FAT writes
// are slow per call).
func fatWrite(t *testing.T, img, name string, data []byte) {
	t.Helper()
	fs, done := openFAT(t, img, true)
	defer done()
	f, err := fs.OpenFile("/"+name, os.O_CREATE|os.O_RDWR|os.O_TRUNC)
	if err != nil {
		t.Fatalf("media %s: create %s: %v", img, name, err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatalf("media %s: write %s: %v", img, name, err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("media %s: close %s: %v", img, name, err)
	}
}
