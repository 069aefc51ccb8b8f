// Package kmodtest writes synthetic kernel module files and module trees for tests: minimal ELF
// relocatable objects whose only content is a .modinfo section, which is all the module index
// reads. They are not loadable by a kernel.
package kmodtest

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Mod describes one synthetic module.
type Mod struct {
	Path    string   // relative to the modules directory, e.g. kernel/fs/fat/vfat.ko (.ko.gz is gzipped)
	Name    string   // name= field; "" omits it (pre-5.3 kernels)
	Depends []string // depends= (comma-joined)
	Aliases []string // one alias= per entry
	Pad     int      // extra bytes of padding, to give the file a size
}

// ELF returns the bytes of a minimal x86-64 ELF relocatable object with the given .modinfo fields.
func ELF(fields []string, pad int) []byte {
	var modinfo bytes.Buffer
	for _, f := range fields {
		modinfo.WriteString(f)
		modinfo.WriteByte(0)
	}
	shstr := []byte("\x00.modinfo\x00.shstrtab\x00.pad\x00")
	const ehsize, shentsize = 64, 64
	modOff := uint64(ehsize)
	padOff := modOff + uint64(modinfo.Len())
	strOff := padOff + uint64(pad)
	shOff := (strOff + uint64(len(shstr)) + 7) &^ 7

	var b bytes.Buffer
	hdr := elf.Header64{
		Type:      uint16(elf.ET_REL),
		Machine:   uint16(elf.EM_X86_64),
		Version:   uint32(elf.EV_CURRENT),
		Shoff:     shOff,
		Ehsize:    ehsize,
		Shentsize: shentsize,
		Shnum:     4,
		Shstrndx:  3,
	}
	copy(hdr.Ident[:], elf.ELFMAG)
	hdr.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	hdr.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	hdr.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	binary.Write(&b, binary.LittleEndian, hdr)
	b.Write(modinfo.Bytes())
	b.Write(make([]byte, pad))
	b.Write(shstr)
	b.Write(make([]byte, int(shOff)-b.Len()))
	secs := []elf.Section64{
		{},
		{Name: 1, Type: uint32(elf.SHT_PROGBITS), Flags: uint64(elf.SHF_ALLOC), Off: modOff, Size: uint64(modinfo.Len()), Addralign: 1},
		{Name: 20, Type: uint32(elf.SHT_PROGBITS), Off: padOff, Size: uint64(pad), Addralign: 1},
		{Name: 10, Type: uint32(elf.SHT_STRTAB), Off: strOff, Size: uint64(len(shstr)), Addralign: 1},
	}
	for _, s := range secs {
		binary.Write(&b, binary.LittleEndian, s)
	}
	return b.Bytes()
}

// Fields returns the .modinfo strings for m.
func (m Mod) Fields() []string {
	f := []string{"license=GPL"}
	for _, a := range m.Aliases {
		f = append(f, "alias="+a)
	}
	f = append(f, "depends="+strings.Join(m.Depends, ","))
	if m.Name != "" {
		f = append(f, "name="+m.Name)
	}
	f = append(f, "vermagic=6.1.0-test SMP mod_unload modversions")
	return f
}

// WriteTree writes the modules under dir (a lib/modules/RELEASE directory) plus a modules.builtin
// listing the builtin paths.
func WriteTree(dir string, mods []Mod, builtin []string) error {
	for _, m := range mods {
		p := filepath.Join(dir, filepath.FromSlash(m.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		data := ELF(m.Fields(), m.Pad)
		if strings.HasSuffix(m.Path, ".gz") {
			var z bytes.Buffer
			zw := gzip.NewWriter(&z)
			zw.Write(data)
			if err := zw.Close(); err != nil {
				return err
			}
			data = z.Bytes()
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
	}
	var bl strings.Builder
	for _, b := range builtin {
		bl.WriteString(b + "\n")
	}
	return os.WriteFile(filepath.Join(dir, "modules.builtin"), []byte(bl.String()), 0o644)
}

// VirtioTree is a small module tree modelled on Debian's cloud kernel (depends= as in 6.1.0-57
// cloud-amd64, whose depmod output TestModulesDepFormat quotes): the virtio block chain,
// vfat with its codepages, isofs via cdrom, usb-storage (file name with '-'), and ext4 built in.
func VirtioTree() (mods []Mod, builtin []string) {
	return []Mod{
		{Path: "kernel/drivers/virtio/virtio_ring.ko", Name: "virtio_ring"},
		{Path: "kernel/drivers/virtio/virtio.ko", Name: "virtio", Depends: []string{"virtio_ring"}},
		{Path: "kernel/drivers/virtio/virtio_pci_modern_dev.ko", Name: "virtio_pci_modern_dev"},
		{Path: "kernel/drivers/virtio/virtio_pci_legacy_dev.ko", Name: "virtio_pci_legacy_dev"},
		{Path: "kernel/drivers/virtio/virtio_pci.ko", Name: "virtio_pci",
			Depends: []string{"virtio_ring", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio"},
			Aliases: []string{"pci:v00001AF4d*sv*sd*bc*sc*i*"}},
		{Path: "kernel/drivers/block/virtio_blk.ko", Name: "virtio_blk",
			Depends: []string{"virtio", "virtio_ring"}, Aliases: []string{"virtio:d00000002v*"}, Pad: 4096},
		{Path: "kernel/drivers/char/hw_random/virtio-rng.ko", Name: "virtio_rng",
			Depends: []string{"virtio_ring", "virtio"}, Aliases: []string{"virtio:d00000004v*"}},
		{Path: "kernel/fs/fat/fat.ko", Name: "fat"},
		{Path: "kernel/fs/fat/vfat.ko", Name: "vfat", Depends: []string{"fat"}, Aliases: []string{"fs-vfat"}},
		{Path: "kernel/fs/nls/nls_cp437.ko", Name: "nls_cp437", Aliases: []string{"nls_cp437"}},
		{Path: "kernel/fs/nls/nls_ascii.ko.gz", Name: "nls_ascii"},
		{Path: "kernel/drivers/cdrom/cdrom.ko", Name: "cdrom"},
		{Path: "kernel/fs/isofs/isofs.ko", Name: "isofs", Depends: []string{"cdrom"}, Aliases: []string{"iso9660", "fs-iso9660"}},
		{Path: "kernel/drivers/scsi/scsi_common.ko", Name: "scsi_common"},
		{Path: "kernel/drivers/scsi/scsi_mod.ko", Name: "scsi_mod", Depends: []string{"scsi_common"}},
		{Path: "kernel/drivers/scsi/sr_mod.ko", Name: "sr_mod", Depends: []string{"scsi_mod", "cdrom", "scsi_common"},
			Aliases: []string{"scsi:t-0x05*", "scsi:t-0x04*"}},
		{Path: "kernel/drivers/usb/storage/usb-storage.ko", Name: "usb_storage", Depends: []string{"scsi_mod", "usbcore"},
			Aliases: []string{"usb:v*p*d*dc*dsc*dp*ic08isc06ip50in*"}},
		{Path: "kernel/drivers/usb/core/usbcore.ko", Name: "usbcore", Depends: []string{"usb_common"}},
		{Path: "kernel/drivers/usb/common/usb-common.ko", Name: "usb_common"},
		{Path: "kernel/fs/squashfs/squashfs.ko"}, // no name= field: pre-5.3 style
		{Path: "kernel/drivers/block/loop.ko", Name: "loop", Aliases: []string{"devname:loop-control", "char-major-10-237"}},
	}, []string{"kernel/fs/ext4/ext4.ko", "kernel/fs/mbcache.ko"}
}

// RealModulesDir returns lib/modules/RELEASE of the Debian kernel that scripts/fetch-kernel.sh
// unpacks into build/kernel/ARCH (KERNEL_DIR overrides build/kernel, as for the script), or ""
// with the reason when it has not been fetched.
func RealModulesDir(repoRoot, arch string) (dir, why string) {
	base := os.Getenv("KERNEL_DIR")
	if base == "" {
		base = filepath.Join(repoRoot, "build", "kernel")
	}
	kdir := filepath.Join(base, arch)
	rel, err := os.ReadFile(filepath.Join(kdir, "release"))
	if err != nil {
		return "", fmt.Sprintf("kernel tree %s not fetched (run scripts/fetch-kernel.sh %s): %v", kdir, arch, err)
	}
	dir = filepath.Join(kdir, "lib", "modules", strings.TrimSpace(string(rel)))
	if _, err := os.Stat(dir); err != nil {
		return "", fmt.Sprintf("kernel tree %s incomplete: %v", kdir, err)
	}
	return dir, ""
}
