package testdata

import (
	"archive/tar"
	"compress/gzip"
	"io"
	"os"
	"strings"
	"testing"
)

// TarGzMember returns the contents of member name ("./" prefixes ignored) of the gzip'd tar at
// path — e.g. the APKINDEX of an APKINDEX.tar.gz, read without verifying its signature (that is
// the index package's job), or lib/apk/db/installed of the minirootfs.
func TarGzMember(t testing.TB, path, name string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s: member %s not found: %v", path, name, err)
		}
		if strings.TrimPrefix(h.Name, "./") == name {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatalf("%s: %s: %v", path, name, err)
			}
			return b
		}
	}
}
