package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ramboot/ramboot/internal/apkarch"
	"github.com/ramboot/ramboot/internal/mediaimg"
)

// cmdMedia builds boot media (ISO 9660 or FAT32) with Alpine's layout.
func cmdMedia(args []string) int {
	fs := flag.NewFlagSet("media", flag.ContinueOnError)
	out := fs.String("out", "", "output image file (required)")
	format := fs.String("format", "", "iso or fat (required)")
	kernel := fs.String("kernel", "", "kernel image, placed at /boot/vmlinuz (required)")
	initrd := fs.String("initramfs", "", "initramfs, placed at /boot/initramfs (required)")
	cmdline := fs.String("cmdline", "", "kernel command line, recorded in /boot/cmdline and /boot/syslinux/syslinux.cfg")
	arch := fs.String("arch", apkarch.Runtime(), "arch of a --repo directory not named after an arch")
	size := fs.Int64("size", 0, "FAT image size in MiB (default: fit the content)")
	label := fs.String("label", mediaimg.DefaultLabel, "volume label")
	keysDir := fs.String("keys-dir", "", "require repository indexes to verify against these apk keys")
	isolinux := fs.String("isolinux", "", `ISO only: make it BIOS-bootable with isolinux from DIR (isolinux.bin, ldlinux.c32), or "auto" for Debian's`)
	var repos, ovls stringList
	fs.Var(&repos, "repo", "repository directory (REPO with ARCH/APKINDEX.tar.gz, or REPO/ARCH) copied to /apks (repeatable)")
	fs.Var(&ovls, "apkovl", "HOST.apkovl.tar.gz placed at the root (repeatable)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: ramboot media --out FILE --format iso|fat --kernel FILE --initramfs FILE [--repo DIR]... [--apkovl FILE]... [--cmdline STRING] [--arch ARCH] [--size MiB] [--label LABEL]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *out == "" || *format == "" || *kernel == "" || *initrd == "" || fs.NArg() != 0 {
		fs.Usage()
		return 2
	}
	iso, err := isolinuxFiles(*isolinux)
	if err != nil {
		fmt.Fprintf(os.Stderr, "ramboot media: %v\n", err)
		return 1
	}
	res, err := mediaimg.Build(*out, mediaimg.Options{
		Isolinux: iso,
		Format:   *format, Kernel: *kernel, Initramfs: *initrd, Repos: repos, Apkovls: ovls,
		Cmdline: *cmdline, Arch: *arch, SizeMiB: *size, Label: *label, KeysDir: *keysDir, Progress: os.Stderr,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "ramboot media: %v\n", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "wrote %s (%d bytes, %d files)\n", *out, res.Size, len(res.Files))
	return 0
}

// isolinuxFiles resolves --isolinux: "auto" is Debian's location (packages isolinux and
// syslinux-common), a directory must hold isolinux.bin and ldlinux.c32.
func isolinuxFiles(v string) ([]string, error) {
	if v == "" {
		return nil, nil
	}
	files := []string{filepath.Join(v, "isolinux.bin"), filepath.Join(v, "ldlinux.c32")}
	if v == "auto" {
		files = []string{"/usr/lib/ISOLINUX/isolinux.bin", "/usr/lib/syslinux/modules/bios/ldlinux.c32"}
	}
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("--isolinux %s: %w (Debian: apt-get install isolinux syslinux-common)", v, err)
		}
	}
	return files, nil
}
