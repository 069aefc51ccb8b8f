package main

import (
	"flag"
	"fmt"
	"os"

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
	arch := fs.String("arch", hostArch(), "arch of a --repo directory not named after an arch")
	size := fs.Int64("size", 0, "FAT image size in MiB (default: fit the content)")
	label := fs.String("label", mediaimg.DefaultLabel, "volume label")
	keysDir := fs.String("keys-dir", "", "require repository indexes to verify against these apk keys")
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
	res, err := mediaimg.Build(*out, mediaimg.Options{
		Format: *format, Kernel: *kernel, Initramfs: *initrd, Repos: repos, Apkovls: ovls,
		Cmdline: *cmdline, Arch: *arch, SizeMiB: *size, Label: *label, KeysDir: *keysDir, Progress: os.Stderr,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "ramboot media: %v\n", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "wrote %s (%d bytes, %d files)\n", *out, res.Size, len(res.Files))
	return 0
}
