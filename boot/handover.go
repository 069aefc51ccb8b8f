package boot

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// handover moves the mounts into the new root, frees the initramfs, chroots and execs init.
func handover(ctx context.Context, s *state) error {
	e := s.env
	if s.newRoot == "" {
		return fmt.Errorf("no new root")
	}
	initPath, err := resolveIn(s.newRoot, s.cfg.Init)
	if err != nil {
		return fmt.Errorf("%s not found in the new root: %w", s.cfg.Init, err)
	}
	if fi, err := os.Stat(initPath); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s in the new root is not an executable file", s.cfg.Init)
	}
	// Safety: only PID 1 switches roots, and only into a separate mount; otherwise freeing the
	// initramfs below would delete the new root too.
	if pid := e.Getpid(); pid != 1 {
		return fmt.Errorf("not PID 1 (pid %d): refusing to switch root", pid)
	}
	rootDev, err := e.DevOf(e.path(""))
	if err != nil {
		return err
	}
	newDev, err := e.DevOf(s.newRoot)
	if err != nil {
		return err
	}
	if rootDev == newDev {
		return fmt.Errorf("new root %s is not a separate mount", e.rel(s.newRoot))
	}

	// The start-up before the first phase, from the kernel log; read before the clock stops, so
	// the reading itself is part of the total it reports.
	var startup float64
	if e.KernelLog != nil && s.markAt > 0 {
		if klog, err := e.KernelLog(); err == nil {
			startup, _ = startupMS(klog, s.markAt)
		}
	}
	// The report goes into /run, which moves into the new root with it.
	pr := PhaseReport{Name: "handover", Fatal: true, Status: "ok", StartMS: ms(e.Now().Sub(s.start))}
	rep := *s.report
	rep.Phases = append(append([]PhaseReport(nil), rep.Phases...), pr)
	rep.TotalMS = pr.StartMS
	if startup > 0 {
		rep.StartupMS, rep.InitToExecMS = startup, startup+rep.TotalMS
		e.Log.Infof("handover", "/init to exec of %s: %.3fs (start-up before the plan %.3fs)", s.cfg.Init, rep.InitToExecMS/1000, startup/1000)
	}
	if err := WriteReport(e.path("run/ramboot/boot.json"), &rep); err != nil {
		e.Log.Warnf("handover", "%v", err)
	}

	moves := []string{"/dev", "/proc", "/sys", "/run"}
	for _, m := range s.media {
		moves = append(moves, e.rel(m.Mountpoint))
	}
	for _, m := range moves {
		src := e.path(m)
		if d, err := e.DevOf(src); err != nil || d == rootDev {
			continue // not a mount point (sub-mounts such as /dev/pts moved with their parent)
		}
		dst := filepath.Join(s.newRoot, m)
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return fmt.Errorf("mkdir %s: %w", dst, err)
		}
		if err := e.Actions.Mount(src, dst, "", MSMove, ""); err != nil {
			return fmt.Errorf("move %s: %w", m, err)
		}
	}
	if e.IsRAM(e.path("")) {
		n := freeTree(e.path(""), rootDev, s.newRoot, e.DevOf)
		e.Log.Debugf("handover", "freed %d initramfs entries", n)
	} else {
		e.Log.Debugf("handover", "initramfs not freed: / is not ramfs/tmpfs")
	}
	e.Actions.Sync()
	if err := e.Actions.Chdir(s.newRoot); err != nil {
		return fmt.Errorf("chdir new root: %w", err)
	}
	if err := e.Actions.Mount(s.newRoot, "/", "", MSMove, ""); err != nil {
		return fmt.Errorf("move new root to /: %w", err)
	}
	if err := e.Actions.Chroot("."); err != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	if err := e.Actions.ReopenConsole("/dev/" + s.cfg.Console()); err != nil {
		e.Log.Warnf("handover", "console: %v", err)
	}
	e.Log.Infof("handover", "exec %s after %.3fs", s.cfg.Init, e.Now().Sub(s.start).Seconds())
	argv := append([]string{s.cfg.Init}, s.cfg.InitArgs...)
	if err := e.Actions.Exec(s.cfg.Init, argv, e.InitEnv); err != nil {
		return fmt.Errorf("exec %s: %w", s.cfg.Init, err)
	}
	return nil
}

// freeTree deletes the initramfs contents like switch_root: only entries on the initramfs
// device, never crossing into other mounts and never touching skip (the new root). It returns
// the number of entries removed.
func freeTree(dir string, dev uint64, skip string, devOf func(string) (uint64, error)) int {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	n := 0
	for _, en := range ents {
		p := filepath.Join(dir, en.Name())
		if p == skip {
			continue
		}
		if d, err := devOf(p); err != nil || d != dev {
			continue
		}
		if en.IsDir() {
			n += freeTree(p, dev, skip, devOf)
		}
		if os.Remove(p) == nil {
			n++
		}
	}
	return n
}
