package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/ramboot/ramboot/internal/apkarch"
	"github.com/ramboot/ramboot/internal/apkinstall/index"
	"github.com/ramboot/ramboot/internal/apkinstall/signer"
)

// cmdIndex is `apk index` + `abuild-sign`: it writes a (signed) APKINDEX.tar.gz for packages.
func cmdIndex(args []string) int {
	fs := flag.NewFlagSet("index", flag.ContinueOnError)
	out := fs.String("out", "", "output APKINDEX.tar.gz (required)")
	key := fs.String("sign", "", "private key KEY.rsa to sign with (apk trusts KEY.rsa.pub)")
	desc := fs.String("description", "", "repository description (DESCRIPTION)")
	arch := fs.String("arch", "", "arch to list noarch packages under (default: the output directory name if it is an arch, else the packages' arch)")
	quiet := fs.Bool("quiet", false, "no progress output")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: ramboot index --out APKINDEX.tar.gz [--sign KEY.rsa] [--description TEXT] [--arch ARCH] PKG.apk...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *out == "" || fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	opts := index.WriteOptions{Description: *desc, RewriteArch: *arch}
	signed := "unsigned"
	if *key != "" {
		s, err := signer.LoadSigner(*key)
		if err != nil {
			fmt.Fprintf(os.Stderr, "ramboot index: %v\n", err)
			return 1
		}
		opts.Signer = s
		signed = "signed with " + s.KeyName
	}
	if opts.RewriteArch == "" {
		a, err := guessArch(*out, fs.Args())
		if err != nil {
			fmt.Fprintf(os.Stderr, "ramboot index: %v\n", err)
			return 1
		}
		opts.RewriteArch = a
	}
	var progress io.Writer = os.Stderr
	if *quiet {
		progress = nil
	}
	pkgs, err := index.WriteFile(*out, fs.Args(), opts, progress)
	if err != nil {
		fmt.Fprintf(os.Stderr, "ramboot index: %v\n", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "Index has %d packages (%s, noarch listed as %s): %s\n", len(pkgs), signed, opts.RewriteArch, *out)
	return 0
}

// guessArch picks the arch abuild would pass to --rewrite-arch: the output directory's name if it
// is an arch (repositories are laid out as REPO/ARCH/APKINDEX.tar.gz), else the one arch the
// non-noarch packages share.
func guessArch(out string, apks []string) (string, error) {
	if d := filepath.Base(filepath.Dir(out)); apkarch.Known(d) {
		return d, nil
	}
	seen := map[string]bool{}
	for _, a := range apks {
		p, err := index.RecordFromAPK(a)
		if err != nil {
			return "", err
		}
		if p.Arch != "" && p.Arch != "noarch" {
			seen[p.Arch] = true
		}
	}
	var arches []string
	for a := range seen {
		arches = append(arches, a)
	}
	sort.Strings(arches)
	if len(arches) != 1 {
		return "", fmt.Errorf("cannot tell which arch to list noarch packages under (packages have %v and %s is not in an ARCH directory): pass --arch", arches, out)
	}
	return arches[0], nil
}
