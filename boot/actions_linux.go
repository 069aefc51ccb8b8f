package boot

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/u-root/u-root/pkg/kmodule"
	"golang.org/x/sys/unix"
)

// unixActions performs the real system calls. It is only used by cmd/init as PID 1.
type unixActions struct{}

// NewUnixActions returns the Actions that make real system calls.
func NewUnixActions() Actions { return unixActions{} }

func (unixActions) Mount(source, target, fstype string, flags uintptr, data string) error {
	if err := unix.Mount(source, target, fstype, flags, data); err != nil {
		return &os.PathError{Op: "mount " + fstype, Path: target, Err: err}
	}
	return nil
}

func (unixActions) Unmount(target string, flags int) error {
	if err := unix.Unmount(target, flags); err != nil {
		return &os.PathError{Op: "umount", Path: target, Err: err}
	}
	return nil
}

// LoadModule uses finit_module for plain .ko files (no copy through user space) and u-root's
// kmodule for compressed ones. An already loaded module is not an error.
func (unixActions) LoadModule(path, params string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("module: %w", err)
	}
	defer f.Close()
	if strings.HasSuffix(path, ".ko") {
		err = unix.FinitModule(int(f.Fd()), params, 0)
	} else {
		err = kmodule.FileInit(f, params, 0)
	}
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("module %s: %w", filepath.Base(path), err)
	}
	return nil
}

func (unixActions) Chdir(dir string) error { return os.Chdir(dir) }

func (unixActions) Chroot(dir string) error {
	if err := unix.Chroot(dir); err != nil {
		return &os.PathError{Op: "chroot", Path: dir, Err: err}
	}
	return os.Chdir("/")
}

// ReopenConsole makes the console the controlling stdio, like switch_root -c: init and its
// gettys must talk to the device the user sees.
func (unixActions) ReopenConsole(dev string) error {
	fd, err := unix.Open(dev, unix.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: dev, Err: err}
	}
	for i := 0; i < 3; i++ {
		if err := unix.Dup2(fd, i); err != nil {
			unix.Close(fd)
			return fmt.Errorf("dup2 %s: %w", dev, err)
		}
	}
	if fd > 2 {
		unix.Close(fd)
	}
	return nil
}

func (unixActions) Spawn(chroot, path string, argv, env []string) error {
	attr := &unix.SysProcAttr{Setsid: true, Setctty: true, Chroot: chroot}
	cmd := &exec.Cmd{Path: path, Args: argv, Env: env, Dir: "/", Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, SysProcAttr: attr}
	if err := cmd.Start(); err != nil {
		// The console may not be a terminal (no controlling tty possible): run without one.
		attr.Setctty = false
		cmd = &exec.Cmd{Path: path, Args: argv, Env: env, Dir: "/", Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, SysProcAttr: attr}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("spawn %s: %w", path, err)
		}
	}
	return cmd.Wait()
}

func (unixActions) Exec(path string, argv, env []string) error {
	if err := unix.Exec(path, argv, env); err != nil {
		return &os.PathError{Op: "exec", Path: path, Err: err}
	}
	return nil
}

func (unixActions) Reboot(cmd int) error { return unix.Reboot(cmd) }

func (unixActions) Sync() { unix.Sync() }
