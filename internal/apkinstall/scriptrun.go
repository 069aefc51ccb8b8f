package apkinstall

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/ramboot/ramboot/internal/apkinstall/db"
	"github.com/ramboot/ramboot/internal/apkinstall/pkgstream"
	"github.com/ramboot/ramboot/internal/apkinstall/scripts"
	"github.com/ramboot/ramboot/internal/apkinstall/solver"
	"golang.org/x/sys/unix"
)

func (in *installer) runScript(ctx context.Context, e *db.Entry, dp *pkgstream.Package, typ string, c solver.Change) {
	args := []string{c.New.Version}
	if c.Old != nil {
		typ = strings.Replace(typ, "install", "upgrade", 1)
		args = append(args, c.Old.Version)
	}
	for _, s := range dp.Scripts {
		if s.Type != typ {
			continue
		}
		pv := e.Pkg.Name + "-" + e.Pkg.Version
		t0 := time.Now()
		err := in.runScriptFile(ctx, scripts.Script{Package: pv, Type: typ, Data: s.Data, Args: args})
		in.res.Timings.Scripts += time.Since(t0)
		if err != nil {
			// apk marks the package "broken script", counts an error and carries on.
			in.res.Errors++
			if !strings.Contains(e.Flags, "s") {
				e.Flags += "s"
			}
			fmt.Fprintf(in.errw, "ERROR: %v\n", err)
		}
	}
}

func (in *installer) deinstallScript(ctx context.Context, e *db.Entry, typ string) {
	if in.opts.NoScripts {
		return
	}
	for _, s := range e.Scripts {
		if s.Type != typ {
			continue
		}
		pv := e.Pkg.Name + "-" + e.Pkg.Version
		err := in.runScriptFile(ctx, scripts.Script{Package: pv, Type: typ, Data: s.Data, Args: []string{e.Pkg.Version}})
		if err != nil {
			in.res.Errors++
			fmt.Fprintf(in.errw, "ERROR: %v\n", err)
		}
	}
}

// runTriggers runs the .trigger script of every package whose trigger globs match a directory:
// a package changed in this transaction sees all matching directories, others only the
// directories this transaction touched (apk 2.x commit.c run_triggers). It returns the packages
// whose trigger failed; the caller flags them.
func (in *installer) runTriggers(ctx context.Context, changed map[*db.Entry]bool, touched map[string]bool) (broken []*db.Entry) {
	var allDirs []string
	seen := map[string]bool{}
	for _, e := range in.db.Packages {
		for _, d := range e.Dirs {
			if !seen[d.Name] {
				seen[d.Name] = true
				allDirs = append(allDirs, d.Name)
			}
		}
	}
	for _, e := range in.db.Packages {
		if len(e.Triggers) == 0 {
			continue
		}
		var script []byte
		for _, s := range e.Scripts {
			if s.Type == "trigger" {
				script = s.Data
			}
		}
		if script == nil {
			continue
		}
		var args []string
		for _, d := range allDirs {
			if !changed[e] && !touched[d] {
				continue
			}
			for _, g := range e.Triggers {
				if ok, _ := path.Match(g, "/"+d); ok {
					args = append(args, "/"+d)
					break
				}
			}
		}
		if len(args) == 0 {
			continue
		}
		pv := e.Pkg.Name + "-" + e.Pkg.Version
		if err := in.runScriptFile(ctx, scripts.Script{Package: pv, Type: "trigger", Data: script, Args: args}); err != nil {
			in.res.Errors++
			broken = append(broken, e)
			fmt.Fprintf(in.errw, "ERROR: %v\n", err)
		}
	}
	return broken
}

// runScriptFile runs one script, with the decoders giving way to it (yieldToScripts).
func (in *installer) runScriptFile(ctx context.Context, s scripts.Script) error {
	in.scriptsRunning.Add(1)
	defer in.scriptsRunning.Add(-1)
	return scripts.Run(ctx, in.opts.Root, s, in.scriptOut, in.opts.Quiet)
}

// yieldToScripts is the decoders' pkgstream Yield and extract.Stage yield. While a package
// script runs, a decoder gives its CPU away before each deflate block and between 256 KiB
// pieces of hashing and staging, rather than keep it until the scheduler's next tick. A script is a chain of short processes (the shell, then each command it forks and
// waits for), so with a decoder busy on every CPU each step of it waited for a CPU, up to a
// tick (4 ms at HZ=250). Scripts are on the commit's critical path: the writer waits for a
// pre-install, which waits for the post-install scripts before it. The base world's install
// is about 5% faster for it.
func (in *installer) yieldToScripts() {
	if in.scriptsRunning.Load() > 0 {
		// Raw: the call is short, and must not make the Go scheduler hand this P on.
		unix.RawSyscall(unix.SYS_SCHED_YIELD, 0, 0, 0)
	}
}
