package lbu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ramboot/ramboot/overlay"
)

const lbuUsage = `usage: lbu [--root DIR] <subcommand> [options] [args]

Available subcommands:
  commit (ci)      [-d] [-e] [-n] [-p PASSWORD] [-v] [MEDIA]  write the overlay to the medium
  diff             [MEDIA]                 diff the committed overlay with the current state
  exclude (ex, delete) [-r] [-l] [-v] FILE...  exclude files from the overlay
  include (inc, add)   [-r] [-l] [-v] FILE...  include files in the overlay
  list (ls)                                list the files that would be committed
  list-backup (lb) [MEDIA]                 list backups
  package (pkg)    [-v] [DIR|FILE|-]        write the overlay to a file ("-" = stdout)
  revert           REVISION [MEDIA]        make a backup the overlay of the next boot
  status (stat, st) [-a] [-v] [MEDIA]      what changed since the last commit (-a: since install)

Configuration: ROOT/etc/lbu/lbu.conf (LBU_MEDIA, LBU_BACKUPDIR, BACKUP_LIMIT, ENCRYPTION,
DEFAULT_CIPHER, PASSWORD); MEDIA is a name under /media.`

var lbuAliases = map[string]string{
	"commit": "commit", "ci": "commit",
	"include": "include", "inc": "include", "add": "include",
	"exclude": "exclude", "ex": "exclude", "delete": "exclude",
	"list": "list", "ls": "list",
	"package": "package", "pkg": "package",
	"status": "status", "stat": "status", "st": "status",
	"list-backup": "list-backup", "lb": "list-backup",
	"revert": "revert", "diff": "diff",
}

// lbuFlags are lbu's getopts "adehlM:np:qrv" flags (global: accepted by every subcommand).
type lbuFlags struct {
	a, d, e, h, l, n, q, r, v bool
	p                         string
	pSet                      bool
}

func parseLbuFlags(args []string) (lbuFlags, []string, error) {
	var f lbuFlags
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		if len(a) < 2 || a[0] != '-' {
			break
		}
		for k := 1; k < len(a); k++ {
			switch a[k] {
			case 'a':
				f.a = true
			case 'd':
				f.d = true
			case 'e':
				f.e = true
			case 'h':
				f.h = true
			case 'l':
				f.l = true
			case 'n':
				f.n = true
			case 'q':
				f.q = true
			case 'r':
				f.r = true
			case 'v':
				f.v = true
			case 'M', 'p':
				val := a[k+1:]
				if val == "" {
					if i+1 >= len(args) {
						return f, nil, fmt.Errorf("option -%c needs an argument", a[k])
					}
					i++
					val = args[i]
				}
				if a[k] == 'p' {
					f.p, f.pSet = val, true
				} // -M is accepted and ignored, like lbu
				k = len(a)
			default:
				return f, nil, fmt.Errorf("unknown option -%c", a[k])
			}
		}
	}
	return f, args[i:], nil
}

// Main is the lbu command for the booted system and the ramboot CLI: prog is argv[0] (an
// "lbu_<cmd>" name selects the subcommand, like alpine-conf's links) and args are the arguments
// after it (or after "ramboot lbu"). It returns the exit code: 0 ok, 1 failure, 2 usage.
func Main(prog string, args []string) int {
	return Run(prog, args, os.Getenv, os.Stdin, os.Stdout, os.Stderr)
}

// Run is Main with explicit environment and standard streams (tests).
func Run(prog string, args []string, getenv func(string) string, stdin *os.File, stdout, stderr io.Writer) int {
	root := getenv("ROOT")
	if root == "" {
		root = "/"
	}
	if base := filepath.Base(prog); strings.HasPrefix(base, "lbu_") {
		args = append([]string{strings.TrimPrefix(base, "lbu_")}, args...)
	}
	for len(args) > 0 && strings.HasPrefix(args[0], "--root") {
		if v, ok := strings.CutPrefix(args[0], "--root="); ok {
			root, args = v, args[1:]
		} else if len(args) > 1 {
			root, args = args[1], args[2:]
		} else {
			fmt.Fprintln(stderr, "lbu: --root needs a directory")
			return 2
		}
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(stderr, lbuUsage)
		return 2
	}
	sub, ok := lbuAliases[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "lbu: unknown subcommand %q\n%s\n", args[0], lbuUsage)
		return 2
	}
	fl, pos, err := parseLbuFlags(args[1:])
	if err != nil {
		fmt.Fprintf(stderr, "lbu %s: %v\n%s\n", sub, err, lbuUsage)
		return 2
	}
	if fl.h {
		fmt.Fprintln(stdout, lbuUsage)
		return 0
	}
	if fl.a && sub != "status" || fl.n && sub != "commit" {
		fmt.Fprintf(stderr, "lbu %s: -a is only for status, -n only for commit\n%s\n", sub, lbuUsage)
		return 2
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		fmt.Fprintf(stderr, "lbu: root %s: %v\n", root, err)
		return 1
	}
	cfg, err := LoadConfig(abs, getenv)
	if err != nil {
		fmt.Fprintf(stderr, "lbu: %v\n", err)
		return 1
	}
	o := &Options{Root: abs, Config: cfg, Out: stdout, Err: stderr, Verbose: fl.v, Hooks: abs == "/"}
	if fl.pSet {
		o.Password = fl.p
	}
	if stdin != nil && isTerminal(stdin) {
		o.PasswordPrompt = overlay.ConsolePrompt(stdin, stderr, 2*time.Minute)
	}
	// SIGINT/SIGTERM cancel between commit steps; the medium is remounted read-only on the way
	// out and the previous overlay is never left missing.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runLbu(ctx, o, sub, fl, pos, stdout, stderr); err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "lbu %s: %v\n%s\n", sub, err, lbuUsage)
			return 2
		}
		fmt.Fprintf(stderr, "lbu %s: %v\n", sub, err)
		return 1
	}
	return 0
}

type usageError string

func (u usageError) Error() string { return string(u) }

func optArg(pos []string, max int) (string, error) {
	if len(pos) > max {
		return "", usageError(fmt.Sprintf("too many arguments: %q", pos))
	}
	if len(pos) == 0 {
		return "", nil
	}
	return pos[0], nil
}

func runLbu(ctx context.Context, o *Options, sub string, fl lbuFlags, pos []string, stdout, stderr io.Writer) error {
	w := o.Out
	switch sub {
	case "include", "exclude":
		sign := byte('+')
		if sub == "exclude" {
			sign = '-'
		}
		if fl.l {
			if len(pos) > 0 {
				return usageError("-l takes no arguments")
			}
			if fl.v {
				if sign == '+' {
					fmt.Fprintln(w, "Include files:")
				} else {
					fmt.Fprintln(w, "Exclude files:")
				}
			}
			ents, err := ListEntries(o.Root, sign)
			for _, e := range ents {
				fmt.Fprintln(w, e)
			}
			return err
		}
		if len(pos) == 0 {
			return usageError("no files given")
		}
		msgs, err := UpdateList(o.Root, sign, pos, fl.r)
		if fl.v {
			for _, m := range msgs {
				fmt.Fprintln(w, m)
			}
		}
		return err

	case "list":
		if len(pos) > 0 {
			return usageError("list takes no arguments")
		}
		files, err := FileList(o.Root)
		for _, f := range files {
			fmt.Fprintln(w, f)
		}
		return err

	case "package":
		dest, err := optArg(pos, 1)
		if err != nil {
			return err
		}
		cipher := o.Config.Encryption
		if cipher == "" && fl.e {
			cipher = o.Config.DefaultCipher
		}
		if dest == "-" {
			// Verbose names go to stderr so stdout stays a clean archive.
			o.Out = stderr
		}
		o.PasswordPrompt = confirmPrompt(o.PasswordPrompt)
		p, err := PackageTo(ctx, o, dest, stdout, cipher)
		if err == nil && p != "-" && fl.v {
			fmt.Fprintf(stderr, "Created %s\n", p)
		}
		return err

	case "commit":
		media, err := optArg(pos, 1)
		if err != nil {
			return err
		}
		if fl.n {
			o.Verbose = true
		}
		o.PasswordPrompt = confirmPrompt(o.PasswordPrompt)
		return Commit(ctx, o, CommitOptions{Media: media, DryRun: fl.n, DeleteOld: fl.d, Encrypt: fl.e})

	case "list-backup":
		media, err := optArg(pos, 1)
		if err != nil {
			return err
		}
		bs, err := ListBackups(o, media)
		for _, b := range bs {
			fmt.Fprintln(w, b)
		}
		return err

	case "revert":
		if len(pos) == 0 {
			return usageError("revert needs a REVISION (see lbu list-backup)")
		}
		media, err := optArg(pos[1:], 1)
		if err != nil {
			return err
		}
		return Revert(ctx, o, pos[0], media)

	case "status":
		if fl.a {
			if len(pos) > 0 {
				return usageError("status -a takes no arguments")
			}
			cs, err := AuditStatus(o)
			for _, c := range cs {
				if fl.v && c.Detail != "" {
					fmt.Fprintf(w, "%c %s (%s)\n", c.Reason, c.Path, c.Detail)
				} else {
					fmt.Fprintf(w, "%c %s\n", c.Reason, c.Path)
				}
			}
			return err
		}
		media, err := optArg(pos, 1)
		if err != nil {
			return err
		}
		ds, path, err := Status(ctx, o, media)
		if err != nil {
			return err
		}
		if path == "" {
			fmt.Fprintln(stderr, "lbu status: no committed overlay found: everything is new")
		} else if fl.v {
			fmt.Fprintf(w, "Changes since %s:\n", path)
		}
		for _, d := range ds {
			if d.Detail != "" && (fl.v || d.Reason == 'M') {
				fmt.Fprintf(w, "%c %s (%s)\n", d.Reason, d.Path, d.Detail)
			} else {
				fmt.Fprintf(w, "%c %s\n", d.Reason, d.Path)
			}
		}
		return nil

	case "diff":
		media, err := optArg(pos, 1)
		if err != nil {
			return err
		}
		return WriteDiff(ctx, o, media, w)
	}
	return usageError("unknown subcommand " + sub)
}

// confirmPrompt asks for a new password twice (like openssl enc when encrypting).
func confirmPrompt(p func(string) ([]byte, error)) func(string) ([]byte, error) {
	if p == nil {
		return nil
	}
	return func(prompt string) ([]byte, error) {
		a, err := p(prompt)
		if err != nil {
			return nil, err
		}
		b, err := p("Verifying - " + prompt)
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(a, b) {
			return nil, errors.New("passwords do not match")
		}
		return a, nil
	}
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
