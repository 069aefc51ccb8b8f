package boot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ramboot/ramboot/internal/tmpfs"
	"golang.org/x/sys/unix"
)

// earlyMounts mounts the pseudo filesystems with Alpine's options and attaches /dev/kmsg.
func earlyMounts(ctx context.Context, s *state) error {
	e := s.env
	mounts := []struct {
		source, target, fstype string
		flags                  uintptr
		data                   string
		fatal                  bool
	}{
		{"proc", "proc", "proc", MSNoexec | MSNosuid | MSNodev, "", true},
		{"sysfs", "sys", "sysfs", MSNoexec | MSNosuid | MSNodev, "", true},
		{"devtmpfs", "dev", "devtmpfs", MSNosuid, "mode=0755,size=2M", true},
		{"devpts", "dev/pts", "devpts", MSNoexec | MSNosuid, "gid=5,mode=0620", false},
		{"shm", "dev/shm", "tmpfs", MSNodev | MSNosuid | MSNoexec, "", false},
		// /run is mounted here and moved into the new root: OpenRC keeps an already mounted /run,
		// so the boot report survives the handover.
		{"run", "run", "tmpfs", MSNosuid | MSNodev, "mode=0755", false},
	}
	for _, m := range mounts {
		target := e.path(m.target)
		if err := os.MkdirAll(target, 0o755); err != nil {
			return fmt.Errorf("mkdir %s: %w", target, err)
		}
		err := e.Actions.Mount(m.source, target, m.fstype, m.flags, m.data)
		// EBUSY: already mounted (kernel automount, re-exec); that is what we wanted.
		if err != nil && !errors.Is(err, unix.EBUSY) {
			if m.fatal {
				return fmt.Errorf("mount %s on /%s: %w", m.fstype, m.target, err)
			}
			msg := fmt.Sprintf("mount %s on /%s: %v", m.fstype, m.target, err)
			s.report.Warnings = append(s.report.Warnings, "early-mounts: "+msg)
			e.Log.Warnf("early-mounts", "%s", msg)
		}
		if m.target == "proc" {
			if b, err := os.ReadFile(e.path("proc/uptime")); err == nil {
				if f := strings.Fields(string(b)); len(f) > 0 {
					if up, err := strconv.ParseFloat(f[0], 64); err == nil {
						s.report.UptimeAtInitMS = up*1000 - ms(e.Now().Sub(s.start))
					}
				}
			}
		}
		if m.target == "dev" {
			s.attachKmsg() // as soon as /dev exists, so later failures reach the kernel log
		}
	}
	return nil
}

// attachKmsg starts logging to /dev/kmsg and applies quiet from the first line on.
func (s *state) attachKmsg() {
	e := s.env
	// quiet must hold from the first line (this phase's own timing line).
	if b, err := os.ReadFile(e.path("proc/cmdline")); err == nil {
		e.Log.SetQuiet(ParseCmdline(string(b)).Quiet)
	}
	if f, err := os.OpenFile(e.path("dev/kmsg"), os.O_WRONLY|os.O_APPEND, 0); err == nil {
		// A debug-level mark whose kernel timestamp, read back at handover, ties the plan's
		// clock to the kernel's (see startupMS).
		s.markAt = e.Now().Sub(s.start)
		fmt.Fprintf(f, "<7>%s\n", clockMark)
		level := 0
		if b, err := os.ReadFile(e.path("proc/sys/kernel/printk")); err == nil {
			if f := strings.Fields(string(b)); len(f) > 0 {
				level, _ = strconv.Atoi(f[0])
			}
		}
		e.Log.AttachKmsg(f, level)
		kmsg := e.path("dev/kmsg")
		e.Log.ReopenKmsg(func() (io.WriteCloser, error) { return os.OpenFile(kmsg, os.O_WRONLY|os.O_APPEND, 0) })
	} else {
		s.note("no kernel log: %v", err)
	}
}

// readCmdline parses /proc/cmdline and applies quiet/debug_init and blacklist=.
func readCmdline(ctx context.Context, s *state) error {
	data, err := os.ReadFile(s.env.path("proc/cmdline"))
	if err != nil {
		return fmt.Errorf("read kernel command line: %w", err)
	}
	line := strings.TrimSpace(string(data))
	s.cfg = ParseCmdline(line)
	s.report.Cmdline = line
	s.env.Log.SetQuiet(s.cfg.Quiet)
	s.env.Log.SetDebug(s.cfg.Debug)
	for _, w := range s.cfg.Warnings {
		s.report.Warnings = append(s.report.Warnings, w)
		s.env.Log.Warnf("cmdline", "%s", w)
	}
	if len(s.cfg.Blacklist) > 0 {
		// Alpine writes this file; keep it so modprobe in the initramfs (if any) agrees.
		var b strings.Builder
		for _, m := range s.cfg.Blacklist {
			fmt.Fprintf(&b, "blacklist %s\n", m)
		}
		p := s.env.path("etc/modprobe.d/boot-opt-blacklist.conf")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			return fmt.Errorf("blacklist: %w", err)
		}
	}
	return nil
}

// singleShell gives Alpine's "single" shell before the root is built; the boot continues when
// it exits.
func singleShell(ctx context.Context, s *state) error {
	if !s.cfg.Single {
		return errSkipped
	}
	sh, argv := findShell(s.env.path(""))
	if sh == "" {
		return fmt.Errorf("single: no shell in the initramfs")
	}
	s.env.Log.Warnf("single", "starting a shell; exit it to continue the boot")
	return s.env.Actions.Spawn("", sh, argv, shellEnv)
}

// mountRoot mounts the tmpfs that becomes the root filesystem.
func mountRoot(ctx context.Context, s *state) error {
	flags, data, err := tmpfs.Options(s.cfg.RootFlags, s.cfg.RootSize)
	if err != nil {
		return fmt.Errorf("rootflags: %w", err)
	}
	root := s.env.path("sysroot")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	if err := s.env.Actions.Mount("tmpfs", root, "tmpfs", flags, data); err != nil {
		return fmt.Errorf("tmpfs root: %w", err)
	}
	s.newRoot = root
	s.note("%s", data)
	return nil
}
