// Command ramboot is the host and admin CLI of ramboot: an apk-compatible installer, lbu, and the
// tools that build initramfs images, boot media, signed repository indexes and keys.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// command is one subcommand; it returns the process exit code.
type command struct {
	run   func(args []string) int
	usage string
}

func commands() map[string]command {
	return map[string]command{
		"apk":       {cmdApk, "apk add [options] WORLD...      install packages (apk-compatible)"},
		"lbu":       {cmdLbu, "lbu [--root DIR] SUBCOMMAND ...  Alpine's local backup utility"},
		"initramfs": {cmdInitramfs, "initramfs --out FILE --init BIN  build the initramfs"},
		"media":     {cmdMedia, "media --out FILE --format iso|fat  build boot media"},
		"index":     {cmdIndex, "index --out APKINDEX.tar.gz PKG.apk...  build a signed index"},
		"keygen":    {cmdKeygen, "keygen --out NAME                 make an abuild-compatible key pair"},
	}
}

func main() {
	os.Exit(run(os.Args))
}

func run(argv []string) int {
	cmds := commands()
	// Multi-call: installed as "lbu" in the booted system.
	if base := filepath.Base(argv[0]); base == "lbu" || strings.HasPrefix(base, "lbu_") {
		return cmds["lbu"].run(argv[1:])
	}
	if len(argv) < 2 || argv[1] == "-h" || argv[1] == "--help" || argv[1] == "help" {
		usage(cmds)
		return 2
	}
	c, ok := cmds[argv[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "ramboot: unknown command %q\n", argv[1])
		usage(cmds)
		return 2
	}
	return c.run(argv[2:])
}

func usage(cmds map[string]command) {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(os.Stderr, "usage: ramboot COMMAND [options]")
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %s\n", cmds[n].usage)
	}
}
