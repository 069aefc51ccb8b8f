// Package mediaimg builds ramboot boot media: an ISO 9660 (Rock Ridge + Joliet) or FAT32 image
// laid out as Alpine's media are, so the same image serves Alpine users:
//
//	/boot/vmlinuz, /boot/initramfs, /boot/cmdline, /boot/syslinux/syslinux.cfg
//	/apks/.boot_repository, /apks/ARCH/APKINDEX.tar.gz, /apks/ARCH/NAME-VERSION.apk ...
//	/HOST.apkovl.tar.gz ...
//
// Repositories are checked before they are copied: the index must load (and verify, when keys are
// given) and every package it lists must be present with the identity (C:) the index records.
package mediaimg

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ramboot/ramboot/internal/apkarch"
	"github.com/ramboot/ramboot/internal/apkinstall/index"
	"github.com/ramboot/ramboot/internal/apkinstall/pkg"
	"github.com/ramboot/ramboot/internal/apkinstall/sign"
)

// Options describes one boot medium.
type Options struct {
	Format    string   // "iso" or "fat"
	Kernel    string   // kernel image file (required)
	Initramfs string   // initramfs file (required)
	Repos     []string // repository directories: REPO (with ARCH/APKINDEX.tar.gz) or REPO/ARCH
	Apkovls   []string // *.apkovl.tar.gz[.CIPHER] files placed at the root
	Cmdline   string   // kernel command line recorded in /boot/cmdline and syslinux.cfg
	Arch      string   // arch of a repository directory not named after one (default x86_64)
	SizeMiB   int64    // FAT image size; 0 = fit the content with a margin
	Label     string   // volume label (default RAMBOOT)
	// KeysDir, when set, holds the apk keys the repository indexes must verify against; when
	// empty the signature is not required (the booting system checks it), but hashes still are.
	KeysDir string
	// Isolinux, for ISO images, is the isolinux.bin and ldlinux.c32 (Debian packages isolinux and
	// syslinux-common) to make the image BIOS-bootable with El Torito; empty = no bootloader
	// (boot with -kernel/-initrd, as the tests do).
	Isolinux []string
	Progress io.Writer
}

// File is one file placed on the medium.
type File struct {
	Path string // absolute path on the medium
	Size int64
	src  string // host file to copy, or
	data []byte // literal content
}

// Result reports what was built.
type Result struct {
	Files []File
	Size  int64 // image file size
}

// DefaultLabel is the volume label when none is given.
const DefaultLabel = "RAMBOOT"

// Build writes the image to out (via a temporary file renamed into place).
func Build(out string, opts Options) (*Result, error) {
	if opts.Label == "" {
		opts.Label = DefaultLabel
	}
	if opts.Arch == "" {
		opts.Arch = "x86_64"
	}
	switch opts.Format {
	case "iso":
		if len(opts.Label) > 32 {
			return nil, fmt.Errorf("label %q: ISO 9660 volume identifiers have at most 32 characters", opts.Label)
		}
		if opts.SizeMiB != 0 {
			return nil, errors.New("--size applies to FAT images only")
		}
	case "fat":
		if len(opts.Label) > 11 {
			return nil, fmt.Errorf("label %q: FAT volume labels have at most 11 characters", opts.Label)
		}
	default:
		return nil, fmt.Errorf("format %q: want iso or fat", opts.Format)
	}
	files, err := Plan(opts)
	if err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp*")
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", out, err)
	}
	tmpName := tmp.Name()
	tmp.Close()
	defer os.Remove(tmpName)
	switch opts.Format {
	case "iso":
		err = writeISO(tmpName, opts, files)
	case "fat":
		err = writeFAT(tmpName, opts, files)
	}
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", out, err)
	}
	if err := os.Chmod(tmpName, 0o644); err != nil {
		return nil, fmt.Errorf("image %s: %w", out, err)
	}
	if err := os.Rename(tmpName, out); err != nil {
		return nil, fmt.Errorf("image %s: %w", out, err)
	}
	st, err := os.Stat(out)
	if err != nil {
		return nil, err
	}
	if opts.Progress != nil {
		var total int64
		for _, f := range files {
			total += f.Size
		}
		fmt.Fprintf(opts.Progress, "media: %s image %s: %d files, %s of content, image %s, label %s\n",
			opts.Format, out, len(files), human(total), human(st.Size()), opts.Label)
	}
	return &Result{Files: files, Size: st.Size()}, nil
}

// Plan checks the inputs and returns the files of the medium, sorted by path.
func Plan(opts Options) ([]File, error) {
	var files []File
	addSrc := func(dst, src string) error {
		st, err := os.Stat(src)
		if err != nil {
			return err
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("%s: not a regular file", src)
		}
		files = append(files, File{Path: dst, Size: st.Size(), src: src})
		return nil
	}
	addData := func(dst string, data []byte) {
		files = append(files, File{Path: dst, Size: int64(len(data)), data: data})
	}
	if opts.Kernel == "" || opts.Initramfs == "" {
		return nil, errors.New("media: a kernel and an initramfs are required")
	}
	if err := addSrc("/boot/vmlinuz", opts.Kernel); err != nil {
		return nil, fmt.Errorf("kernel: %w", err)
	}
	if err := addSrc("/boot/initramfs", opts.Initramfs); err != nil {
		return nil, fmt.Errorf("initramfs: %w", err)
	}
	if err := checkGzip(opts.Initramfs); err != nil {
		return nil, fmt.Errorf("initramfs %s: %w", opts.Initramfs, err)
	}
	addData("/boot/cmdline", []byte(opts.Cmdline+"\n"))
	// Not a bootloader, but the configuration one would need: syslinux users can install
	// syslinux/isolinux and boot the medium as is.
	syslinuxCfg := []byte(fmt.Sprintf(
		"SERIAL 0 115200\nDEFAULT ramboot\nPROMPT 0\nTIMEOUT 10\nLABEL ramboot\n  KERNEL /boot/vmlinuz\n  INITRD /boot/initramfs\n  APPEND %s\n", opts.Cmdline))
	addData("/boot/syslinux/syslinux.cfg", syslinuxCfg)
	if len(opts.Isolinux) > 0 {
		if opts.Format != "iso" {
			return nil, errors.New("isolinux applies to ISO images only")
		}
		for _, src := range opts.Isolinux {
			base := filepath.Base(src)
			if base != "isolinux.bin" && base != "ldlinux.c32" {
				return nil, fmt.Errorf("isolinux file %s: want isolinux.bin and ldlinux.c32", src)
			}
			if err := addSrc("/boot/syslinux/"+base, src); err != nil {
				return nil, fmt.Errorf("isolinux: %w", err)
			}
		}
		addData("/boot/syslinux/isolinux.cfg", syslinuxCfg)
	}

	for i, r := range opts.Repos {
		top := "/apks"
		if i > 0 {
			// Each boot repository is its own top-level directory with a .boot_repository
			// marker (nlplug-findfs only looks one level down).
			top = fmt.Sprintf("/apks%d", i+1)
		}
		repoFiles, err := planRepo(r, top, opts)
		if err != nil {
			return nil, err
		}
		files = append(files, repoFiles...)
		addData(top+"/.boot_repository", nil)
	}
	for _, o := range opts.Apkovls {
		base := filepath.Base(o)
		if !strings.Contains(base, ".apkovl.tar.gz") {
			return nil, fmt.Errorf("apkovl %s: name must match *.apkovl.tar.gz[.CIPHER] or boot will not find it", o)
		}
		if strings.HasSuffix(base, ".apkovl.tar.gz") {
			if err := checkGzip(o); err != nil {
				return nil, fmt.Errorf("apkovl %s: %w", o, err)
			}
		}
		if err := addSrc("/"+base, o); err != nil {
			return nil, fmt.Errorf("apkovl: %w", err)
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	for i := 1; i < len(files); i++ {
		if files[i].Path == files[i-1].Path {
			return nil, fmt.Errorf("two inputs want %s on the medium", files[i].Path)
		}
	}
	return files, nil
}

// planRepo lists the files of one repository directory, checked against its index.
func planRepo(dir, top string, opts Options) ([]File, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("repository: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("repository %s: not a directory", dir)
	}
	type archDir struct{ arch, dir string }
	var arches []archDir
	if _, err := os.Stat(filepath.Join(dir, "APKINDEX.tar.gz")); err == nil {
		a := filepath.Base(filepath.Clean(dir))
		if !apkarch.Known(a) {
			a = opts.Arch
		}
		arches = append(arches, archDir{a, dir})
	} else {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("repository %s: %w", dir, err)
		}
		for _, e := range ents {
			if e.IsDir() && apkarch.Known(e.Name()) {
				if _, err := os.Stat(filepath.Join(dir, e.Name(), "APKINDEX.tar.gz")); err == nil {
					arches = append(arches, archDir{e.Name(), filepath.Join(dir, e.Name())})
				}
			}
		}
	}
	if len(arches) == 0 {
		return nil, fmt.Errorf("repository %s: no APKINDEX.tar.gz in it or in an ARCH subdirectory", dir)
	}
	keys, err := sign.LoadKeyRing(opts.KeysDir)
	if err != nil {
		return nil, err
	}
	var files []File
	for _, a := range arches {
		ixPath := filepath.Join(a.dir, "APKINDEX.tar.gz")
		ix, err := index.Load(ixPath, keys, opts.KeysDir == "")
		if err != nil {
			return nil, err
		}
		pkgs, err := pkg.ParseIndex(bytes.NewReader(ix.Text))
		if err != nil {
			return nil, fmt.Errorf("index %s: %w", ixPath, err)
		}
		dst := path.Join(top, a.arch)
		st, _ := os.Stat(ixPath)
		files = append(files, File{Path: dst + "/APKINDEX.tar.gz", Size: st.Size(), src: ixPath})
		for i, p := range pkgs {
			name := p.Name + "-" + p.Version + ".apk"
			src := filepath.Join(a.dir, name)
			rec, err := index.RecordFromAPK(src)
			if err != nil {
				return nil, fmt.Errorf("repository %s: index lists %s: %w", a.dir, name, err)
			}
			if rec.Checksum != p.Checksum {
				return nil, fmt.Errorf("repository %s: package %s has identity %s, index says %s", a.dir, src, rec.Checksum, p.Checksum)
			}
			files = append(files, File{Path: dst + "/" + name, Size: rec.Size, src: src})
			if opts.Progress != nil && (i+1)%25 == 0 {
				fmt.Fprintf(opts.Progress, "  checked %d/%d packages of %s\n", i+1, len(pkgs), a.dir)
			}
		}
		if opts.Progress != nil {
			signed := "signature not checked"
			if ix.SignedBy != "" {
				signed = "signed by " + ix.SignedBy
			}
			fmt.Fprintf(opts.Progress, "  repository %s -> %s: %d packages (%s)\n", a.dir, dst, len(pkgs), signed)
		}
	}
	return files, nil
}

// checkGzip reads the gzip magic, to catch an obviously wrong file early.
func checkGzip(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	var b [2]byte
	if _, err := io.ReadFull(f, b[:]); err != nil || b[0] != 0x1f || b[1] != 0x8b {
		return errors.New("not gzip-compressed")
	}
	return nil
}

// open returns the content of f.
func (f File) open() (io.ReadCloser, error) {
	if f.src == "" {
		return io.NopCloser(bytes.NewReader(f.data)), nil
	}
	return os.Open(f.src)
}

func human(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
