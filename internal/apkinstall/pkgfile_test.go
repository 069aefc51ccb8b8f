package apkinstall

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestOpenPackageFile(t *testing.T) {
	dir := t.TempDir()
	want := bytes.Repeat([]byte("apk"), 5000)
	file := filepath.Join(dir, "p.apk")
	if err := os.WriteFile(file, want, 0o644); err != nil {
		t.Fatal(err)
	}
	pf, _, err := openPackageFile(file, nil)
	if err != nil {
		t.Fatalf("openPackageFile = %v", err)
	}
	if !pf.mapped || !bytes.Equal(pf.data, want) {
		t.Errorf("openPackageFile: mapped %v, content equal %v; want true, true", pf.mapped, bytes.Equal(pf.data, want))
	}
	pf.close()

	empty := filepath.Join(dir, "empty.apk")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if pf, _, err := openPackageFile(empty, nil); err != nil || len(pf.data) != 0 {
		t.Errorf("openPackageFile(empty) = %d bytes, %v; want 0, nil", len(pf.data), err)
	}
	if _, _, err := openPackageFile(dir, nil); err == nil {
		t.Errorf("openPackageFile(directory) = nil error, want one")
	}
}

// TestCatchFaultTruncated: a mapped package file cut short while it is decoded raises SIGBUS
// on access past the new end; the installer must report it, not crash.
func TestCatchFaultTruncated(t *testing.T) {
	file := filepath.Join(t.TempDir(), "p.apk")
	if err := os.WriteFile(file, make([]byte, 64<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	pf, _, err := openPackageFile(file, nil)
	if err != nil || !pf.mapped {
		t.Fatalf("openPackageFile = mapped %v, %v", pf.mapped, err)
	}
	defer pf.close()
	if err := os.Truncate(file, 0); err != nil {
		t.Fatal(err)
	}
	var sum byte
	err = catchFault(func() error {
		for _, b := range pf.data {
			sum += b
		}
		return nil
	})
	if !errors.Is(err, errFileChanged) {
		t.Errorf("reading a truncated mapping: error = %v, want errFileChanged", err)
	}
	// Other panics are not swallowed.
	defer func() {
		if r := recover(); r != "other" {
			t.Errorf("catchFault re-panicked with %v, want \"other\"", r)
		}
	}()
	catchFault(func() error { panic("other") })
}
