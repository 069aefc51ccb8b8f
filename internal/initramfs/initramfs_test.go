package initramfs_test

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/gzip"
	"github.com/u-root/u-root/pkg/cpio"

	"github.com/ramboot/ramboot/internal/initramfs"
	"github.com/ramboot/ramboot/internal/kmod"
	"github.com/ramboot/ramboot/internal/kmod/kmodtest"
	"github.com/ramboot/ramboot/internal/testdata"
)

// fakeInit writes a minimal ELF executable header for machine (enough for the arch check; never run).
func fakeInit(t *testing.T, machine elf.Machine) string {
	t.Helper()
	var b bytes.Buffer
	hdr := elf.Header64{Type: uint16(elf.ET_EXEC), Machine: uint16(machine), Version: uint32(elf.EV_CURRENT), Ehsize: 64}
	copy(hdr.Ident[:], elf.ELFMAG)
	hdr.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	hdr.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	hdr.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	binary.Write(&b, binary.LittleEndian, hdr)
	b.WriteString("pretend this is a Go init binary")
	p := filepath.Join(t.TempDir(), "init")
	if err := os.WriteFile(p, b.Bytes(), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// dynamicELF returns a dynamically linked executable of the host, if one is around.
func dynamicELF(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/bin/true", "/usr/bin/true", "/bin/sh"} {
		f, err := elf.Open(p)
		if err != nil {
			continue
		}
		defer f.Close()
		for _, prog := range f.Progs {
			if prog.Type == elf.PT_INTERP {
				return p
			}
		}
	}
	t.Skip("prerequisite missing: a dynamically linked host executable (/bin/true)")
	return ""
}

func synthTree(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "lib", "modules", "6.1.0-test")
	mods, builtin := kmodtest.VirtioTree()
	if err := kmodtest.WriteTree(dir, mods, builtin); err != nil {
		t.Fatal(err)
	}
	return dir
}

type rec struct {
	mode  uint64
	uid   uint64
	mtime uint64
	ino   uint64
	data  []byte
}

// readImage decompresses and parses an initramfs, keyed by path.
func readImage(t *testing.T, img []byte) map[string]rec {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]rec{}
	for _, r := range recs {
		var data []byte
		if r.ReaderAt != nil && r.FileSize > 0 {
			data = make([]byte, r.FileSize)
			if _, err := r.ReadAt(data, 0); err != nil && err != io.EOF {
				t.Fatal(err)
			}
		}
		if _, dup := out[r.Name]; dup {
			t.Errorf("duplicate record %s", r.Name)
		}
		out[r.Name] = rec{r.Mode, r.UID, r.MTime, r.Ino, data}
	}
	return out
}

// extract writes the image's regular files under dir, so the runtime index can load them.
func extract(t *testing.T, files map[string]rec, dir string) {
	t.Helper()
	for name, r := range files {
		if r.mode&0o170000 != 0o100000 {
			continue
		}
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, r.data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBuildSynthetic(t *testing.T) {
	mdir := synthTree(t)
	init := fakeInit(t, elf.EM_X86_64)
	keys := testdata.Path(t, "alpine", "keys")
	opts := initramfs.Options{Init: init, Arch: "x86_64", ModulesDir: mdir, KeysDir: keys, Modules: []string{"usb-storage"}}
	var img bytes.Buffer
	res, err := initramfs.Build(&img, opts)
	if err != nil {
		t.Fatalf("Build = %v, want nil", err)
	}
	files := readImage(t, img.Bytes())

	if r, ok := files["init"]; !ok || r.mode != 0o100755 {
		t.Errorf("init record = %+v, want a regular file with mode 0755", r)
	}
	initData, _ := os.ReadFile(init)
	if !bytes.Equal(files["init"].data, initData) {
		t.Errorf("init content differs from %s", init)
	}
	for _, d := range []string{"dev", "proc", "sys", "run", "tmp", "media", "sysroot", "etc/apk/keys"} {
		if files[d].mode&0o170000 != 0o040000 {
			t.Errorf("skeleton dir %s missing (mode %o)", d, files[d].mode)
		}
	}
	for _, f := range []string{"etc/passwd", "etc/group", "etc/apk/keys/alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub"} {
		if len(files[f].data) == 0 {
			t.Errorf("file %s missing or empty", f)
		}
	}
	alpineKeys, _ := filepath.Glob(filepath.Join(keys, "*.pub"))
	if len(res.Keys) != len(alpineKeys) {
		t.Errorf("Build keys = %d, want %d", len(res.Keys), len(alpineKeys))
	}
	inodes := map[uint64]string{}
	for name, r := range files {
		if r.uid != 0 || r.mtime != 0 {
			t.Errorf("%s: uid %d mtime %d, want 0 0", name, r.uid, r.mtime)
		}
		if prev, dup := inodes[r.ino]; dup {
			t.Errorf("%s and %s share inode %d", name, prev, r.ino)
		}
		inodes[r.ino] = name
		if dir := filepath.Dir(name); dir != "." {
			if _, ok := files[dir]; !ok {
				t.Errorf("%s: parent %s has no record", name, dir)
			}
		}
	}

	// Missing optional modules are reported; builtin ones noted.
	for _, m := range []string{"ahci", "virtio_scsi", "xhci_pci"} {
		if !contains(res.Missing, m) {
			t.Errorf("Build Missing = %v, want it to include %s", res.Missing, m)
		}
	}
	if !contains(res.Builtin, "ext4") {
		t.Errorf("Build Builtin = %v, want ext4", res.Builtin)
	}

	// The runtime side must resolve from what the image carries.
	root := t.TempDir()
	extract(t, files, root)
	ix, err := kmod.Load(filepath.Join(root, "lib/modules/6.1.0-test"))
	if err != nil {
		t.Fatalf("kmod.Load(image modules) = %v", err)
	}
	for _, tt := range []struct {
		name string
		last string
		n    int
	}{
		{"vfat", "kernel/fs/fat/vfat.ko", 2},
		{"virtio_blk", "kernel/drivers/block/virtio_blk.ko", 3},
		{"virtio_rng", "kernel/drivers/char/hw_random/virtio-rng.ko", 3},
		{"usb_storage", "kernel/drivers/usb/storage/usb-storage.ko", 5},
		{"nls_ascii", "kernel/fs/nls/nls_ascii.ko.gz", 1},
		{"isofs", "kernel/fs/isofs/isofs.ko", 2},
	} {
		got, err := ix.Resolve(tt.name)
		if err != nil || len(got) != tt.n || got[len(got)-1] != tt.last {
			t.Errorf("Resolve(%s) in image = %v, %v, want %d paths ending %s", tt.name, got, err, tt.n, tt.last)
		}
		for _, p := range got {
			if _, ok := files["lib/modules/6.1.0-test/"+p]; !ok {
				t.Errorf("Resolve(%s) names %s, which is not in the image", tt.name, p)
			}
		}
	}
	if !ix.Builtin("ext4") {
		t.Errorf("image modules.builtin does not list ext4")
	}
	if got := ix.MatchAlias("virtio:d00000002v00001AF4"); !cmp.Equal(got, []string{"virtio_blk"}) {
		t.Errorf("MatchAlias(virtio blk) in image = %v, want [virtio_blk]", got)
	}
	// Modules not asked for (directly or as a dependency) stay out.
	if _, ok := files["lib/modules/6.1.0-test/kernel/fs/nope.ko"]; ok {
		t.Errorf("unexpected module in image")
	}

	// GNU cpio, when installed, must read it too.
	if cpioBin, err := exec.LookPath("cpio"); err == nil {
		zr, _ := gzip.NewReader(bytes.NewReader(img.Bytes()))
		cmd := exec.Command(cpioBin, "-t", "--quiet")
		cmd.Stdin = zr
		out, err := cmd.Output()
		if err != nil || !strings.Contains(string(out), "lib/modules/6.1.0-test/modules.dep") {
			t.Errorf("cpio -t: %v\n%s", err, out)
		}
	}
}

func TestBuildReproducible(t *testing.T) {
	mdir := synthTree(t)
	init := fakeInit(t, elf.EM_X86_64)
	var a, b bytes.Buffer
	for _, w := range []*bytes.Buffer{&a, &b} {
		if _, err := initramfs.Build(w, initramfs.Options{Init: init, ModulesDir: mdir}); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Errorf("two builds differ: %d vs %d bytes", a.Len(), b.Len())
	}
	// A root holding one lib/modules/RELEASE (an unpacked kernel package) is accepted as is.
	var d bytes.Buffer
	if _, err := initramfs.Build(&d, initramfs.Options{Init: init, ModulesDir: filepath.Dir(filepath.Dir(filepath.Dir(mdir)))}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), d.Bytes()) {
		t.Errorf("build from the kernel root differs from the build from lib/modules/RELEASE")
	}
	// SOURCE_DATE_EPOCH-style fixed mtime is honoured.
	var c bytes.Buffer
	if _, err := initramfs.Build(&c, initramfs.Options{Init: init, ModTime: time.Unix(1700000000, 0)}); err != nil {
		t.Fatal(err)
	}
	if r := readImage(t, c.Bytes())["init"]; r.mtime != 1700000000 {
		t.Errorf("init mtime = %d, want 1700000000", r.mtime)
	}
}

func TestBuildErrors(t *testing.T) {
	dir := t.TempDir()
	x86 := fakeInit(t, elf.EM_X86_64)
	notELF := filepath.Join(dir, "script")
	os.WriteFile(notELF, []byte("#!/bin/sh\n"), 0o755)
	emptyKeys := filepath.Join(dir, "keys")
	os.MkdirAll(emptyKeys, 0o755)
	tests := []struct {
		name string
		opts initramfs.Options
		want string
	}{
		{"no init", initramfs.Options{}, "no init"},
		{"missing init", initramfs.Options{Init: filepath.Join(dir, "nope")}, "nope"},
		{"not ELF", initramfs.Options{Init: notELF}, "script"},
		{"wrong arch", initramfs.Options{Init: x86, Arch: "aarch64"}, "want EM_AARCH64"},
		{"bad arch", initramfs.Options{Init: x86, Arch: "mips"}, "mips"},
		{"dynamic", initramfs.Options{Init: dynamicELF(t)}, "dynamically linked"},
		{"no keys", initramfs.Options{Init: x86, KeysDir: emptyKeys}, "no *.pub"},
		{"missing modules dir", initramfs.Options{Init: x86, ModulesDir: filepath.Join(dir, "lib/modules/x")}, "lib/modules/x"},
		{"modules without dir", initramfs.Options{Init: x86, Modules: []string{"vfat"}}, "no modules directory"},
	}
	for _, tt := range tests {
		out := filepath.Join(dir, "initramfs.gz")
		_, err := initramfs.BuildFile(out, tt.opts)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: BuildFile = %v, want an error containing %q", tt.name, err, tt.want)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%s: BuildFile left %s behind", tt.name, out)
		}
	}
}

// TestBuildRealKernel builds the default initramfs over Debian's cloud kernel modules.
func TestBuildRealKernel(t *testing.T) {
	for _, tc := range []struct {
		arch    string
		machine elf.Machine
	}{{"x86_64", elf.EM_X86_64}, {"aarch64", elf.EM_AARCH64}} {
		t.Run(tc.arch, func(t *testing.T) { testBuildRealKernel(t, tc.arch, tc.machine) })
	}
}

func testBuildRealKernel(t *testing.T, arch string, machine elf.Machine) {
	root, err := testdata.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	mdir, why := kmodtest.RealModulesDir(root, arch)
	if mdir == "" {
		t.Skipf("prerequisite missing: %s", why)
	}
	init := fakeInit(t, machine)
	var img, progress bytes.Buffer
	start := time.Now()
	res, err := initramfs.Build(&img, initramfs.Options{Init: init, Arch: arch, ModulesDir: mdir,
		KeysDir: testdata.Path(t, "alpine", "keys"), Progress: &progress})
	if err != nil {
		t.Fatalf("Build = %v", err)
	}
	t.Logf("built in %v: %d modules, %d bytes of modules, cpio %d, gzip %d; missing %v; builtin %v",
		time.Since(start), len(res.Modules), res.ModulesBytes, res.CpioSize, res.Size, res.Missing, res.Builtin)
	if res.Size > 8<<20 {
		t.Errorf("initramfs is %d bytes compressed, want < 8 MiB", res.Size)
	}
	files := readImage(t, img.Bytes())
	dir := t.TempDir()
	extract(t, files, dir)
	ix, err := kmod.Load(filepath.Join(dir, "lib/modules", res.Release))
	if err != nil {
		t.Fatal(err)
	}
	// Every default module the kernel has must be loadable from the image, deps included; the
	// chains are those of qemu-and-libraries.md §2.5.
	for _, m := range initramfs.DefaultModules() {
		if contains(res.Missing, m) {
			continue
		}
		if _, err := ix.Resolve(m); err != nil {
			t.Errorf("Resolve(%s) in image = %v", m, err)
		}
	}
	got, _ := ix.Resolve("sr_mod")
	want := []string{"kernel/drivers/cdrom/cdrom.ko", "kernel/drivers/scsi/scsi_common.ko", "kernel/drivers/scsi/scsi_mod.ko", "kernel/drivers/scsi/sr_mod.ko"}
	if diff := cmp.Diff(sortedCopy(want), sortedCopy(got)); diff != "" {
		t.Errorf("Resolve(sr_mod) in image (-want +got):\n%s", diff)
	}
	if !ix.Builtin("ext4") {
		t.Errorf("ext4 not builtin in the cloud kernel's image index")
	}
	if !strings.Contains(progress.String(), "virtio_blk") {
		t.Errorf("progress output lacks the module list:\n%s", progress.String())
	}
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}
