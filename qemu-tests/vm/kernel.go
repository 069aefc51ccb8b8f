package vm

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Kernel is a kernel unpacked by scripts/fetch-kernel.sh into build/kernel/ARCH.
type Kernel struct {
	Arch       string
	Image      string // vmlinuz (bzImage on x86_64, uncompressed Image on aarch64)
	Release    string // e.g. 6.1.0-57-cloud-amd64
	ModulesDir string // .../lib/modules/RELEASE
}

// FindKernel locates the kernel for arch under dir (normally REPO/build/kernel). The error says
// how to fetch it, so that a skipping test can print it.
func FindKernel(dir, arch string) (Kernel, error) {
	base := filepath.Join(dir, arch)
	k := Kernel{Arch: arch, Image: filepath.Join(base, "vmlinuz")}
	rel, err := os.ReadFile(filepath.Join(base, "release"))
	if err != nil {
		return k, fmt.Errorf("no %s kernel in %s (run scripts/fetch-kernel.sh %s): %w", arch, base, arch, err)
	}
	k.Release = strings.TrimSpace(string(rel))
	k.ModulesDir = filepath.Join(base, "lib", "modules", k.Release)
	for _, p := range []string{k.Image, k.ModulesDir} {
		if _, err := os.Stat(p); err != nil {
			return k, fmt.Errorf("incomplete %s kernel in %s (rerun FORCE=1 scripts/fetch-kernel.sh %s): %w", arch, base, arch, err)
		}
	}
	return k, nil
}

// ModulePath returns the path, relative to ModulesDir, of the module file named name (dashes
// and underscores are interchangeable, as for modprobe).
func (k Kernel) ModulePath(name string) (string, error) {
	want := strings.ReplaceAll(name, "-", "_") + ".ko"
	var found string
	err := filepath.WalkDir(filepath.Join(k.ModulesDir, "kernel"), func(p string, d os.DirEntry, err error) error {
		if err != nil || found != "" {
			return err
		}
		if !d.IsDir() && strings.ReplaceAll(d.Name(), "-", "_") == want {
			found = p
			return filepath.SkipAll
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("looking for module %s in %s: %w", name, k.ModulesDir, err)
	}
	if found == "" {
		return "", fmt.Errorf("module %s not found in %s", name, k.ModulesDir)
	}
	return filepath.Rel(k.ModulesDir, found)
}
