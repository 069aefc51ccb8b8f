// Command benchrun runs one command and prints its wall time and resource use, for
// scripts/bench-apk.sh: "WALL_US MAXRSS_KIB USER_S SYS_S".
//
//	benchrun [-chroot DIR] [-o FILE] -- COMMAND ARGS...
//
// It replaces timing with date(1) around /usr/bin/time and chroot(1), which added three process
// start-ups (~5-8 ms here) that are neither installer's work to both sides of the ratio, and
// measures from fork to reap with the monotonic clock (microseconds, not GNU time's 10 ms).
// With -chroot the command is started chrooted directly (the real apk in its minirootfs).
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

func main() {
	root := flag.String("chroot", "", "run the command chrooted into `DIR` (cwd /)")
	out := flag.String("o", "", "append the result line to `FILE` instead of printing it")
	flag.Parse()
	args := flag.Args()
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: benchrun [-chroot DIR] [-o FILE] -- COMMAND ARGS...")
		os.Exit(2)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, nil, os.Stderr
	if *root != "" {
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: *root}
		cmd.Dir = "/"
		// Resolved inside the chroot by the kernel, not against the host's PATH.
		cmd.Path = args[0]
		cmd.Err = nil
	}
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		fmt.Fprintf(os.Stderr, "benchrun: %s: %v\n", args[0], err)
		os.Exit(1)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	line := fmt.Sprintf("%d %d %.3f %.3f\n", wall.Microseconds(), ru.Maxrss,
		time.Duration(ru.Utime.Nano()).Seconds(), time.Duration(ru.Stime.Nano()).Seconds())
	if *out == "" {
		fmt.Print(line)
		return
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		fmt.Fprintf(os.Stderr, "benchrun: %v\n", err)
		os.Exit(1)
	}
	defer f.Close()
	if _, err := f.WriteString(line); err != nil {
		fmt.Fprintf(os.Stderr, "benchrun: %v\n", err)
		os.Exit(1)
	}
}
