// Package kmod builds and reads the kernel module index.
//
// Build side (host): Debian's kernel packages ship no modules.dep or modules.alias (postinst runs
// depmod), so OpenTree/BuildIndex derive them from each module's own .modinfo ELF section and write
// them in depmod's text formats, which u-root's pkg/kmodule and busybox modprobe also read.
//
// Runtime side (PID 1): Load parses modules.dep, modules.alias and modules.builtin; Resolve gives a
// module's load order (dependencies first) and MatchAlias maps a device modalias to module names.
package kmod

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Module is what a module file's .modinfo says about it.
type Module struct {
	Name    string   // normalised module name (underscores)
	Path    string   // slash-separated, relative to the modules directory (e.g. kernel/fs/fat/vfat.ko)
	Depends []string // normalised names of direct dependencies
	Aliases []string // alias globs (e.g. "virtio:d00000002v*")
	Size    int64    // size of the module file in bytes (as stored, compressed or not)
}

// moduleSuffixes returns the file name endings of kernel modules, longest first.
func moduleSuffixes() []string { return []string{".ko.zst", ".ko.xz", ".ko.gz", ".ko"} }

// NormName normalises a module name the way the kernel does: '-' and '_' are equivalent, and
// KBUILD_MODNAME always uses '_'.
func NormName(name string) string {
	return strings.ReplaceAll(name, "-", "_")
}

// nameFromPath returns the normalised module name for a module file path, or "" if the path is
// not a module file.
func nameFromPath(p string) string {
	base := path.Base(p)
	for _, s := range moduleSuffixes() {
		if strings.HasSuffix(base, s) && len(base) > len(s) {
			return NormName(strings.TrimSuffix(base, s))
		}
	}
	return ""
}

// ReadModinfo reads the .modinfo section of the module file at file (uncompressed, or .ko.gz,
// .ko.xz, .ko.zst) and returns its fields. rel is recorded as Module.Path.
func ReadModinfo(file, rel string) (*Module, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read module: %w", err)
	}
	size := int64(len(raw))
	img, err := decompress(file, raw)
	if err != nil {
		return nil, fmt.Errorf("decompress module %s: %w", file, err)
	}
	ef, err := elf.NewFile(bytes.NewReader(img))
	if err != nil {
		return nil, fmt.Errorf("module %s: not an ELF file: %w", file, err)
	}
	defer ef.Close()
	sec := ef.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("module %s: no .modinfo section", file)
	}
	data, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("module %s: read .modinfo: %w", file, err)
	}
	m := parseModinfo(data)
	m.Path = rel
	m.Size = size
	if m.Name == "" {
		// Kernels before 5.3 carry no name= field; the file name is then authoritative.
		m.Name = nameFromPath(file)
	}
	if m.Name == "" {
		return nil, fmt.Errorf("module %s: no name in .modinfo and not a .ko file name", file)
	}
	return m, nil
}

// parseModinfo splits the NUL-separated key=value strings of a .modinfo section.
func parseModinfo(data []byte) *Module {
	m := &Module{}
	for _, f := range bytes.Split(data, []byte{0}) {
		k, v, ok := strings.Cut(string(f), "=")
		if !ok {
			continue
		}
		switch k {
		case "name":
			m.Name = NormName(v)
		case "depends":
			for _, d := range strings.Split(v, ",") {
				if d = strings.TrimSpace(d); d != "" {
					m.Depends = append(m.Depends, NormName(d))
				}
			}
		case "alias":
			if v != "" {
				m.Aliases = append(m.Aliases, v)
			}
		}
	}
	return m
}

// decompress returns the ELF image of a module file, undoing the kernel's optional module
// compression (chosen by file name, as kmod does).
func decompress(file string, raw []byte) ([]byte, error) {
	var r io.Reader
	switch {
	case strings.HasSuffix(file, ".ko.gz"):
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, err
		}
		r = zr
	case strings.HasSuffix(file, ".ko.xz"):
		zr, err := xz.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, err
		}
		r = zr
	case strings.HasSuffix(file, ".ko.zst"):
		zr, err := zstd.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		r = zr
	default:
		return raw, nil
	}
	return io.ReadAll(r)
}
