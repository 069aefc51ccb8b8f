// Command init is ramboot's PID 1 in the initramfs: it recovers panics, logs to the console and
// /dev/kmsg, builds the real Actions and runs boot.Run; on a fatal error it applies the failure
// policy (boot.Fail) and never returns. The boot logic lives in package boot.
//
// Run as anything but PID 1 it is the booted system's agent, installed there as
// /usr/local/sbin/ramboot: "lbu" (via the /usr/local/sbin/lbu link, or "ramboot lbu ...") and
// "ramboot plan" to print the boot plan.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ramboot/ramboot/boot"
	"github.com/ramboot/ramboot/internal/apkarch"
	"github.com/ramboot/ramboot/internal/lbu"
)

func main() {
	if os.Getpid() != 1 {
		os.Exit(agent(os.Args))
	}
	pid1()
}

// pid1 never returns: a Go PID 1 that exits panics the kernel.
func pid1() {
	log := boot.NewLogger(os.Stdout)
	// Go exits on SIGTERM/SIGINT… without a handler; as PID 1 that would panic the kernel (busybox
	// reboot sends SIGTERM to PID 1). Catching (not ignoring) them keeps exec'd init unaffected.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2, unix.SIGPIPE)
	go func() {
		for sig := range sigs {
			log.Warnf("", "ignored signal %v during boot", sig)
		}
	}()
	env := &boot.Env{
		Root:          "/",
		Actions:       boot.NewUnixActions(),
		Log:           log,
		KernelRelease: kernelRelease(),
		Arch:          apkarch.Runtime(),
		SelfExe:       "/proc/self/exe",
		InitEnv:       initEnv(),
		KernelLog:     kernelLog,
		CPUTime:       cpuTime,
		SetNice:       func(tid, nice int) { unix.Setpriority(unix.PRIO_PROCESS, tid, nice) },
	}
	env.Deps = boot.DefaultDeps(os.Stdout, env.Arch)
	var res *boot.Result
	err := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
			}
		}()
		res, err = boot.Run(context.Background(), env)
		if err == nil {
			err = fmt.Errorf("init returned after exec") // only a fake Exec returns nil
		}
		return err
	}()
	func() {
		defer func() {
			if r := recover(); r != nil {
				log.Errorf("failure", "panic in the failure policy: %v", r)
			}
		}()
		boot.Fail(env, res, err)
	}()
	// Halted (panic=0) or the reboot failed: stay alive, reaping orphans.
	for {
		var ws unix.WaitStatus
		if _, err := unix.Wait4(-1, &ws, 0, nil); err != nil {
			time.Sleep(time.Minute)
		}
	}
}

// initEnv is the environment for init: the kernel's (HOME, TERM and unknown cmdline words) plus
// a PATH, as switch_root passes it on.
func initEnv() []string {
	env := os.Environ()
	for _, e := range env {
		if strings.HasPrefix(e, "PATH=") {
			return env
		}
	}
	return append(env, "PATH=/usr/sbin:/usr/bin:/sbin:/bin")
}

func kernelRelease() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

// agent is the booted system's side of the binary.
func agent(args []string) int {
	name := filepath.Base(args[0])
	switch {
	case name == "lbu" || strings.HasPrefix(name, "lbu_"):
		return lbu.Main(name, args[1:])
	case len(args) > 1 && args[1] == "lbu":
		return lbu.Main("lbu", args[2:])
	case len(args) > 1 && args[1] == "plan":
		boot.Describe(os.Stdout)
		return 0
	}
	fmt.Fprintf(os.Stderr, "usage: %s plan | lbu ...   (as PID 1 it boots the system)\n", name)
	return 2
}

// kernelLog reads the whole kernel log buffer in one call (the boot report's start-up timing).
func kernelLog() ([]byte, error) {
	n, err := unix.Klogctl(unix.SYSLOG_ACTION_SIZE_BUFFER, nil)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, n)
	n, err = unix.Klogctl(unix.SYSLOG_ACTION_READ_ALL, buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// cpuTime is the CPU time of this process and its reaped children (package scripts).
func cpuTime() time.Duration {
	var self, children unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &self)
	unix.Getrusage(unix.RUSAGE_CHILDREN, &children)
	return time.Duration(self.Utime.Nano() + self.Stime.Nano() + children.Utime.Nano() + children.Stime.Nano())
}
