package mediaimg

import (
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/fat32"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"
)

// writeISO stages the files in a directory and lets go-diskfs lay out the ISO from it, with Rock
// Ridge (Linux isofs reads the real names, e.g. busybox-mdev-openrc-1.36.1-r15.apk and
// .boot_repository, and modes) and Joliet.
func writeISO(out string, opts Options, files []File) error {
	stage, err := os.MkdirTemp(filepath.Dir(out), ".iso-stage")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stage)
	// The stage becomes the ISO's root directory; MkdirTemp's 0700 would lock out non-root users.
	if err := os.Chmod(stage, 0o755); err != nil {
		return err
	}
	for _, f := range files {
		dst := filepath.Join(stage, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		// A hard link avoids copying when source and stage share a filesystem.
		if f.src != "" && os.Link(f.src, dst) == nil {
			continue
		}
		if err := copyTo(dst, f); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(out, os.O_RDWR|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	b := file.New(f, false)
	fs, err := iso9660.Create(b, 0, 0, 2048, stage)
	if err != nil {
		return fmt.Errorf("create ISO 9660: %w", err)
	}
	fo := iso9660.FinalizeOptions{RockRidge: true, Joliet: true, VolumeIdentifier: opts.Label}
	if len(opts.Isolinux) > 0 {
		// As Alpine's and Debian's ISOs: no emulation, 4 sectors loaded, boot info table.
		e := &iso9660.ElToritoEntry{Platform: iso9660.BIOS, Emulation: iso9660.NoEmulation,
			BootFile: "/boot/syslinux/isolinux.bin", BootTable: true}
		e.SetLoadSize(4)
		fo.ElTorito = &iso9660.ElTorito{BootCatalog: "/boot/syslinux/boot.cat", Entries: []*iso9660.ElToritoEntry{e}}
		// go-diskfs puts the Joliet descriptor at sector 17, pushing the El Torito boot record to
		// 18, where BIOSes do not look (the spec fixes it at 17). Rock Ridge alone serves Linux.
		fo.Joliet = false
	}
	if err := fs.Finalize(fo); err != nil {
		return fmt.Errorf("finalize ISO 9660: %w", err)
	}
	return f.Close()
}

func copyTo(dst string, f File) error {
	r, err := f.open()
	if err != nil {
		return err
	}
	defer r.Close()
	w, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, r); err != nil {
		w.Close()
		return fmt.Errorf("copy %s: %w", f.Path, err)
	}
	return w.Close()
}

// fatMinSize keeps FAT32 images above 65525 clusters of 512 bytes, the spec's FAT32 minimum
// (mtools and fsck.fat reject smaller "FAT32" volumes).
const fatMinSize = 34 << 20

// fatSize returns the image size: the requested MiB, or the content rounded up per 512-byte
// cluster plus directory overhead and a margin.
func fatSize(opts Options, files []File) (int64, error) {
	var content int64
	for _, f := range files {
		content += (f.Size + 511) &^ 511
		content += 512 // directory entries (long names), generously
	}
	if opts.SizeMiB > 0 {
		size := opts.SizeMiB << 20
		if size < fatMinSize {
			return 0, fmt.Errorf("--size %d MiB: FAT32 needs at least %d MiB", opts.SizeMiB, fatMinSize>>20)
		}
		// Two FATs of 4 bytes per 512-byte cluster take ~1.6% of the image.
		if need := content + content/50 + 1<<20; need > size {
			return 0, fmt.Errorf("--size %d MiB: content needs about %d MiB", opts.SizeMiB, (need+1<<20-1)>>20)
		}
		return size, nil
	}
	size := content + content/10 + 4<<20
	size = (size + 1<<20 - 1) &^ (1<<20 - 1)
	if size < fatMinSize {
		size = fatMinSize
	}
	return size, nil
}

// writeFAT creates a FAT32 filesystem covering the whole image (no partition table, like a
// superfloppy USB stick or a virtio disk) and copies the files in.
func writeFAT(out string, opts Options, files []File) error {
	size, err := fatSize(opts, files)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(out, os.O_RDWR|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return err
	}
	fs, err := fat32.Create(file.New(f, false), size, 0, 512, opts.Label, true)
	if err != nil {
		return fmt.Errorf("create FAT32: %w", err)
	}
	made := map[string]bool{"/": true}
	for _, fl := range files {
		dir := path.Dir(fl.Path)
		if !made[dir] {
			if err := fs.Mkdir(dir); err != nil {
				return fmt.Errorf("mkdir %s: %w", dir, err)
			}
			for d := dir; d != "/"; d = path.Dir(d) {
				made[d] = true
			}
		}
		w, err := fs.OpenFile(fl.Path, os.O_CREATE|os.O_RDWR)
		if err != nil {
			return fmt.Errorf("create %s: %w", fl.Path, err)
		}
		r, err := fl.open()
		if err != nil {
			w.Close()
			return err
		}
		_, err = io.Copy(w, r)
		r.Close()
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("write %s: %w", fl.Path, err)
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	return fixFAT(out)
}
