// Package testdata locates the read-only Alpine reference data (../shared) for tests and benchmarks.
// The data is never copied into the repository; RAMBOOT_SHARED points elsewhere when needed.
package testdata

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// RepoRoot walks up from the working directory to the directory holding go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// SharedDir returns the shared data directory: $RAMBOOT_SHARED, else ../shared beside the repository.
func SharedDir() (string, error) {
	if d := os.Getenv("RAMBOOT_SHARED"); d != "" {
		return d, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(filepath.Dir(root), "shared"), nil
}

// Shared returns the shared data directory, skipping the test (and saying why) only when it is
// genuinely missing.
func Shared(t testing.TB) string {
	t.Helper()
	d, err := SharedDir()
	if err != nil {
		t.Skipf("prerequisite missing: shared Alpine data: %v", err)
	}
	if _, err := os.Stat(filepath.Join(d, "alpine")); err != nil {
		t.Skipf("prerequisite missing: shared Alpine data at %s (set RAMBOOT_SHARED): %v", d, err)
	}
	return d
}

// Path joins elements onto the shared directory (see Shared).
func Path(t testing.TB, elem ...string) string {
	t.Helper()
	return filepath.Join(append([]string{Shared(t)}, elem...)...)
}
