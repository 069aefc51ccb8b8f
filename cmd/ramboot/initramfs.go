package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ramboot/ramboot/internal/apkarch"
	"github.com/ramboot/ramboot/internal/initramfs"
)

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// cmdInitramfs builds the initramfs: INIT_BINARY as /init, apk keys, kernel modules.
func cmdInitramfs(args []string) int {
	fs := flag.NewFlagSet("initramfs", flag.ContinueOnError)
	out := fs.String("out", "", "output file (gzip newc cpio) (required)")
	init := fs.String("init", "", "PID 1 binary to place at /init (required)")
	arch := fs.String("arch", apkarch.Runtime(), "target arch: x86_64 or aarch64 (the init binary is checked against it)")
	modDir := fs.String("modules-dir", "", "kernel modules tree lib/modules/RELEASE, or a root holding one (no modules when empty)")
	keysDir := fs.String("keys-dir", "", "directory of apk *.pub keys for /etc/apk/keys (e.g. ../shared/alpine/keys)")
	noDefaults := fs.Bool("no-default-modules", false, "include only the --module modules, not the boot-media default set")
	var mods stringList
	fs.Var(&mods, "module", "extra kernel module to include with its dependencies (repeatable; comma lists allowed)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: ramboot initramfs --out FILE --init INIT_BINARY [--arch x86_64|aarch64] [--modules-dir DIR] [--module NAME]... [--keys-dir DIR]")
		fmt.Fprintf(fs.Output(), "default modules: %s\n", strings.Join(initramfs.DefaultModules(), " "))
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *out == "" || *init == "" || fs.NArg() != 0 {
		fs.Usage()
		return 2
	}
	var modules []string
	for _, m := range mods {
		for _, n := range strings.Split(m, ",") {
			if n = strings.TrimSpace(n); n != "" {
				modules = append(modules, n)
			}
		}
	}
	opts := initramfs.Options{
		Init: *init, Arch: *arch, ModulesDir: *modDir, Modules: modules, NoDefaults: *noDefaults,
		KeysDir: *keysDir, Progress: os.Stderr,
	}
	// Reproducible builds: SOURCE_DATE_EPOCH fixes the mtimes, else they are 0.
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			fmt.Fprintf(os.Stderr, "ramboot initramfs: SOURCE_DATE_EPOCH=%q: not a number\n", s)
			return 1
		}
		opts.ModTime = time.Unix(n, 0)
	}
	if *keysDir == "" {
		fmt.Fprintln(os.Stderr, "ramboot initramfs: warning: no --keys-dir: the image trusts no apk keys, boot repositories will be untrusted")
	}
	if *modDir == "" {
		fmt.Fprintln(os.Stderr, "ramboot initramfs: warning: no --modules-dir: the image has no kernel modules")
	}
	res, err := initramfs.BuildFile(*out, opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "ramboot initramfs: %v\n", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "wrote %s (%d bytes", *out, res.Size)
	if res.Release != "" {
		fmt.Fprintf(os.Stderr, ", kernel %s", res.Release)
	}
	fmt.Fprintln(os.Stderr, ")")
	return 0
}
