// Package initramfs builds ramboot's initramfs: a reproducible gzip-compressed newc cpio holding
// the Go PID 1 as /init, the trusted apk keys, and the kernel modules boot media need (with every
// dependency and a generated modules.dep/modules.alias, since Debian kernels ship none).
package initramfs

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/u-root/u-root/pkg/cpio"

	"github.com/ramboot/ramboot/internal/kmod"
)

// DefaultModules is the module set for booting from media on PCs, VMs and arm64 boards: virtio
// (PCI and MMIO: block, SCSI, entropy), IDE/SATA CD-ROMs and disks, USB sticks, and the
// filesystems boot media use. Names missing from a kernel (e.g. usb-storage in Debian's cloud
// flavour) are reported, not fatal.
func DefaultModules() []string {
	return []string{
		// virtio transports and devices (virtio_rng: QEMU tests give the guest entropy)
		"virtio_pci", "virtio_mmio", "virtio_blk", "virtio_scsi", "virtio_rng",
		// ATA/SATA/SCSI disks and CD-ROMs
		"ata_piix", "ahci", "sd_mod", "sr_mod", "cdrom",
		// USB mass storage and the host controllers it sits behind
		"xhci_pci", "ehci_pci", "ohci_pci", "uhci_hcd", "usb_storage", "uas",
		// filesystems of boot media; vfat needs its default codepage and iocharset
		"isofs", "vfat", "nls_cp437", "nls_ascii", "nls_utf8", "ext4", "squashfs", "loop", "overlay",
	}
}

// Options describes one initramfs.
type Options struct {
	Init       string   // the PID 1 binary, placed at /init (required)
	Arch       string   // "x86_64" or "aarch64": the init binary must be built for it ("" = no check)
	ModulesDir string   // a lib/modules/RELEASE tree, or a root with one such tree ("" = no modules)
	Modules    []string // modules wanted in addition to the defaults
	NoDefaults bool     // leave out DefaultModules
	KeysDir    string   // directory of *.pub apk keys for /etc/apk/keys ("" = none)
	ModTime    time.Time
	// Progress, if not nil, receives the module list with sizes and a summary.
	Progress io.Writer
}

// Module is one module file placed in the image.
type Module struct {
	Name string
	Path string // inside the image
	Size int64
}

// Result reports what was built.
type Result struct {
	Release      string   // kernel release (name of ModulesDir)
	Modules      []Module // dependencies first
	Builtin      []string // requested modules built into the kernel (nothing to add)
	Missing      []string // requested modules the kernel does not have
	Keys         []string // key file names
	CpioSize     int64    // uncompressed
	Size         int64    // compressed
	ModulesBytes int64
}

// machine maps an apk arch name to the ELF machine of binaries for it.
func machine(arch string) (elf.Machine, bool) {
	switch arch {
	case "x86_64":
		return elf.EM_X86_64, true
	case "aarch64":
		return elf.EM_AARCH64, true
	}
	return 0, false
}

// BuildFile builds the initramfs into out, via a temporary file renamed into place so a failed
// build never leaves an image that looks complete.
func BuildFile(out string, opts Options) (*Result, error) {
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp*")
	if err != nil {
		return nil, fmt.Errorf("initramfs %s: %w", out, err)
	}
	defer os.Remove(tmp.Name())
	res, err := Build(tmp, opts)
	if err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("initramfs %s: %w", out, err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("initramfs %s: %w", out, err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return nil, fmt.Errorf("initramfs %s: %w", out, err)
	}
	return res, nil
}

// entry is one file of the image before it becomes a cpio record.
type entry struct {
	name string // without leading slash
	mode uint64 // cpio mode incl. type bits
	data []byte
}

const (
	sIFDIR = 0o040000
	sIFREG = 0o100000
)

// Build writes the gzip-compressed cpio to w.
func Build(w io.Writer, opts Options) (*Result, error) {
	res := &Result{}
	files := map[string]entry{}
	add := func(e entry) { files[e.name] = e }
	dir := func(name string, perm uint64) { add(entry{name: name, mode: sIFDIR | perm}) }
	file := func(name string, perm uint64, data []byte) { add(entry{name: name, mode: sIFREG | perm, data: data}) }

	// /init
	if opts.Init == "" {
		return nil, errors.New("initramfs: no init binary given")
	}
	initData, err := os.ReadFile(opts.Init)
	if err != nil {
		return nil, fmt.Errorf("init binary: %w", err)
	}
	if err := checkInit(opts.Init, initData, opts.Arch); err != nil {
		return nil, err
	}
	file("init", 0o755, initData)

	// Skeleton: mount points the PID 1 uses, and the minimal account files tools expect.
	for _, d := range []string{"dev", "proc", "sys", "run", "tmp", "media", "sysroot", "etc", "etc/apk", "etc/apk/keys", "lib", "lib/modules"} {
		dir(d, 0o755)
	}
	dir("tmp", 0o1777)
	file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\n"))
	file("etc/group", 0o644, []byte("root:x:0:root\n"))

	// apk keys
	if opts.KeysDir != "" {
		keys, err := readKeys(opts.KeysDir)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			file("etc/apk/keys/"+k.name, 0o644, k.data)
			res.Keys = append(res.Keys, k.name)
		}
	}

	// kernel modules
	if opts.ModulesDir != "" {
		if err := addModules(opts, res, add); err != nil {
			return nil, err
		}
	} else if len(opts.Modules) > 0 {
		return nil, fmt.Errorf("initramfs: modules %v requested but no modules directory given", opts.Modules)
	}

	// Parents of everything, so the kernel can create each path in order.
	for name := range files {
		for d := path.Dir(name); d != "."; d = path.Dir(d) {
			if _, ok := files[d]; !ok {
				dir(d, 0o755)
			}
		}
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)

	mtime := uint64(0)
	if !opts.ModTime.IsZero() && opts.ModTime.Unix() > 0 {
		mtime = uint64(opts.ModTime.Unix())
	}
	cw := &countWriter{w: w}
	// Level 6: -9 saves <0.5% on module+Go binary content for twice the time.
	zw, err := gzip.NewWriterLevel(cw, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	raw := &countWriter{w: zw}
	rw := cpio.Newc.Writer(raw)
	for i, n := range names {
		e := files[n]
		info := cpio.Info{
			Ino:      uint64(i + 1), // renumbered: independent of the build host's inodes
			Mode:     e.mode,
			NLink:    1,
			MTime:    mtime,
			FileSize: uint64(len(e.data)),
			Name:     n,
		}
		if e.mode&sIFDIR != 0 {
			info.NLink = 2
		}
		if err := rw.WriteRecord(cpio.StaticRecord(e.data, info)); err != nil {
			return nil, fmt.Errorf("initramfs: write %s: %w", n, err)
		}
	}
	if err := cpio.WriteTrailer(rw); err != nil {
		return nil, fmt.Errorf("initramfs: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("initramfs: %w", err)
	}
	res.CpioSize, res.Size = raw.n, cw.n
	if p := opts.Progress; p != nil {
		fmt.Fprintf(p, "initramfs: %d files, init %s, %d keys, %d modules (%s), cpio %s, gzip %s\n",
			len(names), human(int64(len(initData))), len(res.Keys), len(res.Modules), human(res.ModulesBytes), human(res.CpioSize), human(res.Size))
	}
	return res, nil
}

// modulesTree accepts a lib/modules/RELEASE directory, or a root holding exactly one
// lib/modules/RELEASE (such as an unpacked kernel package).
func modulesTree(dir string) string {
	if _, err := os.Stat(filepath.Join(dir, "kernel")); err == nil {
		return dir
	}
	ents, err := os.ReadDir(filepath.Join(dir, "lib", "modules"))
	if err != nil {
		return dir
	}
	var rels []string
	for _, e := range ents {
		if e.IsDir() {
			rels = append(rels, e.Name())
		}
	}
	if len(rels) != 1 {
		return dir
	}
	return filepath.Join(dir, "lib", "modules", rels[0])
}

func addModules(opts Options, res *Result, add func(entry)) error {
	opts.ModulesDir = modulesTree(opts.ModulesDir)
	tree, err := kmod.OpenTree(opts.ModulesDir)
	if err != nil {
		return err
	}
	res.Release = filepath.Base(filepath.Clean(opts.ModulesDir))
	want := opts.Modules
	if !opts.NoDefaults {
		want = append(DefaultModules(), opts.Modules...)
	}
	var names []string
	seen := map[string]bool{}
	for _, n := range want {
		n = kmod.NormName(n)
		if seen[n] {
			continue
		}
		seen[n] = true
		names = append(names, n)
		if tree.Builtin(n) {
			res.Builtin = append(res.Builtin, n)
		}
	}
	mods, missing, err := tree.Closure(names)
	if err != nil {
		return err
	}
	res.Missing = missing
	base := "lib/modules/" + res.Release + "/"
	for _, m := range mods {
		data, err := os.ReadFile(filepath.Join(opts.ModulesDir, filepath.FromSlash(m.Path)))
		if err != nil {
			return fmt.Errorf("module %s: %w", m.Name, err)
		}
		add(entry{name: base + m.Path, mode: sIFREG | 0o644, data: data})
		res.Modules = append(res.Modules, Module{Name: m.Name, Path: "/" + base + m.Path, Size: int64(len(data))})
		res.ModulesBytes += int64(len(data))
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, "  module %-24s %8s  %s\n", m.Name, human(int64(len(data))), m.Path)
		}
	}
	if opts.Progress != nil {
		if len(res.Builtin) > 0 {
			fmt.Fprintf(opts.Progress, "  built into the kernel: %s\n", strings.Join(res.Builtin, " "))
		}
		if len(res.Missing) > 0 {
			fmt.Fprintf(opts.Progress, "  not in kernel %s (skipped): %s\n", res.Release, strings.Join(res.Missing, " "))
		}
	}
	dep, alias, err := kmod.IndexFiles(mods)
	if err != nil {
		return err
	}
	add(entry{name: base + "modules.dep", mode: sIFREG | 0o644, data: dep})
	add(entry{name: base + "modules.alias", mode: sIFREG | 0o644, data: alias})
	builtin, err := os.ReadFile(filepath.Join(opts.ModulesDir, "modules.builtin"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("modules.builtin: %w", err)
	}
	// Always present (possibly empty) so the runtime knows the list was not lost.
	add(entry{name: base + "modules.builtin", mode: sIFREG | 0o644, data: builtin})
	return nil
}

// checkInit refuses an init that cannot run as PID 1 on the target: not an ELF executable, or
// built for another machine.
func checkInit(name string, data []byte, arch string) error {
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("init binary %s: not an ELF executable: %w", name, err)
	}
	defer f.Close()
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return fmt.Errorf("init binary %s: ELF type %v, want an executable", name, f.Type)
	}
	// The initramfs has no dynamic loader or libraries: a dynamically linked init fails with
	// "Failed to execute /init (error -2)" and a kernel panic.
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			interp := make([]byte, p.Filesz)
			p.ReadAt(interp, 0)
			return fmt.Errorf("init binary %s is dynamically linked (interpreter %s): build it static (CGO_ENABLED=0)", name, strings.TrimRight(string(interp), "\x00"))
		}
	}
	if arch == "" {
		return nil
	}
	m, ok := machine(arch)
	if !ok {
		return fmt.Errorf("arch %q: want x86_64 or aarch64", arch)
	}
	if f.Machine != m {
		return fmt.Errorf("init binary %s is built for %v, want %v (--arch %s)", name, f.Machine, m, arch)
	}
	return nil
}

type key struct {
	name string
	data []byte
}

// readKeys reads the *.pub files of dir (apk keys are PEM public keys named by file name).
func readKeys(dir string) ([]key, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("keys directory: %w", err)
	}
	var out []key
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".pub") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", p, err)
		}
		if !bytes.Contains(data, []byte("-----BEGIN PUBLIC KEY-----")) {
			return nil, fmt.Errorf("key %s: not a PEM public key", p)
		}
		out = append(out, key{e.Name(), data})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("keys directory %s: no *.pub keys", dir)
	}
	return out, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
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
