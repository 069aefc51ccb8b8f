package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ramboot/ramboot/internal/apkinstall"
)

const apkUsage = `usage: ramboot apk add [--root DIR] [--initdb] [--repository REPO]... [--repositories-file FILE]
                      [--keys-dir DIR] [--allow-untrusted] [--no-network] [--simulate] [--arch ARCH]
                      [--no-scripts] [--overlay-from-stdin] [--clean-protected] [--initramfs-diskless-boot]
                      [--quiet] [--progress] WORLD...
REPO is a directory holding ARCH/APKINDEX.tar.gz (packages beside it) or an index .tar.gz file;
"@tag REPO" pins it to a tag.`

// cmdApk implements "ramboot apk add": apk-compatible, in-process installation into a root.
func cmdApk(args []string) int {
	if len(args) == 0 || args[0] != "add" {
		fmt.Fprintln(os.Stderr, apkUsage)
		return 2
	}
	opts, world, overlayStdin, err := parseApkAdd(args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "ramboot apk add: %v\n%s\n", err, apkUsage)
		return 2
	}
	if overlayStdin {
		if opts.OverlayPaths, err = readLines(os.Stdin); err != nil {
			fmt.Fprintf(os.Stderr, "ERROR: reading overlay paths from stdin: %v\n", err)
			return 1
		}
	}
	opts.Out, opts.Err = os.Stdout, os.Stderr
	if opts.Progress {
		opts.ProgressWidth, opts.ProgressChar = progressStyle(os.Stdout)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if f := os.Getenv("RAMBOOT_TRACE"); f != "" {
		// For benchmarks: a runtime/trace of the whole install (go tool trace FILE).
		if stopTrace, err := startTrace(f); err == nil {
			defer stopTrace()
		}
	}
	if f := os.Getenv("RAMBOOT_CPUPROFILE"); f != "" {
		// For benchmarks: a CPU profile of the whole install (go tool pprof FILE).
		if stop, err := startCPUProfile(f); err == nil {
			defer stop()
		}
	}
	res, err := apkinstall.Add(ctx, opts, world)
	if res != nil && os.Getenv("RAMBOOT_TIMINGS") != "" {
		// For benchmarks: where the wall time went (apk has no such output).
		t := res.Timings
		fmt.Fprintf(os.Stderr, "timings: indexes %v solve %v commit %v (scripts %v) triggers %v database %v total %v\n",
			t.Indexes, t.Solve, t.Commit, t.Scripts, t.Triggers, t.Database, t.Total)
	}
	if errors.Is(err, apkinstall.ErrIncomplete) {
		return 1 // the summary line already reported the errors
	}
	if err != nil {
		msg := err.Error()
		if !strings.HasPrefix(msg, "ERROR:") {
			msg = "ERROR: " + msg
		}
		fmt.Fprintln(os.Stderr, msg)
		return 1
	}
	if res != nil && len(res.Failed) > 0 {
		return 1
	}
	return 0
}

func parseApkAdd(args []string) (apkinstall.Options, []string, bool, error) {
	var (
		o            apkinstall.Options
		world        []string
		overlayStdin bool
	)
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			world = append(world, a)
			continue
		}
		if a == "--" {
			world = append(world, args[i+1:]...)
			break
		}
		name, val, hasVal := strings.Cut(a, "=")
		value := func() (string, error) {
			if hasVal {
				return val, nil
			}
			if i+1 >= len(args) {
				return "", fmt.Errorf("option %s needs a value", name)
			}
			i++
			return args[i], nil
		}
		var err error
		switch name {
		case "--root", "-p":
			o.Root, err = value()
		case "--repository", "-X":
			var v string
			if v, err = value(); err == nil {
				r := apkinstall.Repo{Path: v}
				if tag, path, ok := strings.Cut(v, " "); ok && strings.HasPrefix(tag, "@") {
					r = apkinstall.Repo{Tag: tag[1:], Path: strings.TrimSpace(path)}
				}
				o.Repos = append(o.Repos, r)
			}
		case "--repositories-file":
			o.RepositoriesFile, err = value()
		case "--keys-dir":
			o.KeysDir, err = value()
		case "--arch":
			o.Arch, err = value()
		case "--initdb":
			o.InitDB = true
		case "--allow-untrusted":
			o.AllowUntrusted = true
		case "--clean-protected":
			o.CleanProtected = true
		case "--no-network", "--no-cache":
			// Only local repositories are supported; nothing is cached.
		case "--simulate", "-s":
			o.Simulate = true
		case "--no-scripts":
			o.NoScripts = true
		case "--overlay-from-stdin":
			overlayStdin = true
		case "--initramfs-diskless-boot":
			o.Diskless, o.InitDB = true, true
		case "--quiet", "-q":
			o.Quiet = true
		case "--progress":
			o.Progress = true
		default:
			return o, nil, false, fmt.Errorf("unknown option %s", a)
		}
		if err != nil {
			return o, nil, false, err
		}
	}
	if o.Root == "" {
		o.Root = "/"
	}
	if len(world) == 0 && !o.InitDB {
		return o, nil, false, errors.New("no packages given")
	}
	return o, world, overlayStdin, nil
}

func readLines(r io.Reader) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	return out, sc.Err()
}

// startTrace and startCPUProfile record the install into file until the returned func runs.
func startTrace(file string) (func(), error) { return record(file, trace.Start, trace.Stop) }

func startCPUProfile(file string) (func(), error) {
	return record(file, pprof.StartCPUProfile, pprof.StopCPUProfile)
}

func record(file string, start func(io.Writer) error, stop func()) (func(), error) {
	f, err := os.Create(file)
	if err != nil {
		return nil, err
	}
	if err := start(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { stop(); f.Close() }, nil
}

// progressStyle is apk's: the terminal's width (TIOCGWINSZ on stdout) and "#", or a full block
// in a UTF-8 locale; APK_PROGRESS_CHAR overrides the character.
func progressStyle(f *os.File) (width int, char string) {
	if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil {
		width = int(ws.Col)
	}
	if strings.Contains(os.Getenv("LANG"), "UTF-8") {
		char = "\u2588"
	}
	if c := os.Getenv("APK_PROGRESS_CHAR"); c != "" {
		char = c
	}
	return width, char
}
