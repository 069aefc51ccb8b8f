// Package scripts runs package scripts (.pre-install, .post-install, .trigger, ...) the way apk
// 2.x does: the script is written to ROOT/lib/apk/exec/NAME-VER.TYPE, executed chrooted into ROOT
// with umask 022, cwd /, argv {TYPE, args...} and only PATH in the environment, then removed.
package scripts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

// ExecDir is apk's script scratch directory inside the root.
const ExecDir = "lib/apk/exec"

// pathEnv is the only environment variable apk 2.x gives scripts.
const pathEnv = "PATH=/usr/sbin:/usr/bin:/sbin:/bin"

// Script is one script to run.
type Script struct {
	Package string   // name-version, for messages and the file name
	Type    string   // "pre-install", "post-install", "trigger", ...
	Data    []byte   // the script
	Args    []string // after argv[0]: the new version for install scripts, directories for triggers
}

// Error reports a failed script, naming the package, as apk does:
// "NAME-VER.TYPE: script exited with error N".
type Error struct {
	Script string // NAME-VER.TYPE
	Err    error
}

func (e *Error) Error() string {
	var ee *exec.ExitError
	switch {
	case errors.As(e.Err, &ee) && ee.Exited():
		return fmt.Sprintf("%s: script exited with error %d", e.Script, ee.ExitCode())
	case errors.Is(e.Err, fs.ErrNotExist):
		// No interpreter in the root: apk's child exits 127 after the failed execve.
		return fmt.Sprintf("%s: script exited with error 127", e.Script)
	}
	return fmt.Sprintf("%s: script failed: %v", e.Script, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Run executes s chrooted into root, with stdout and stderr going to out. It prints apk's
// "Executing NAME-VER.TYPE" line first unless quiet.
func Run(ctx context.Context, root string, s Script, out io.Writer, quiet bool) error {
	name := s.Package + "." + s.Type
	if !quiet {
		fmt.Fprintf(out, "Executing %s\n", name)
	}
	dir := filepath.Join(root, ExecDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return &Error{name, err}
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return &Error{name, err}
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, s.Data, 0o755); err != nil {
		return &Error{name, err}
	}
	defer os.Remove(p)
	if err := os.Chmod(p, 0o755); err != nil {
		return &Error{name, err}
	}
	cmd := exec.CommandContext(ctx, "/"+ExecDir+"/"+name)
	cmd.Args = append([]string{s.Type}, s.Args...)
	cmd.Env = []string{pathEnv}
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	if root != "/" {
		cmd.SysProcAttr.Chroot = root
	}
	if err := runUmask(cmd); err != nil {
		return &Error{name, err}
	}
	return nil
}

// runUmask starts cmd with umask 022 (apk sets it in the child; Go's SysProcAttr has no umask
// field, so it is set around fork, while the installer's single writer goroutine waits here).
func runUmask(cmd *exec.Cmd) error {
	old := syscall.Umask(0o022)
	err := cmd.Start()
	syscall.Umask(old)
	if err != nil {
		return err
	}
	return cmd.Wait()
}
