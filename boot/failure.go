package boot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// RescueWait is how long the default failure policy waits for someone to ask for the shell.
const RescueWait = 30 * time.Second

var shellEnv = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "TERM=linux", "PS1=(ramboot rescue) # "}

// findShell looks for a shell under root: busybox first (always has sh), then /bin/sh.
func findShell(root string) (string, []string) {
	for _, c := range []struct {
		path string
		argv []string
	}{
		{"bin/busybox", []string{"/bin/busybox", "sh"}},
		{"bin/sh", []string{"sh"}},
	} {
		p, err := resolveIn(root, c.path)
		if err != nil {
			continue
		}
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return filepath.Join(root, c.path), c.argv
		}
	}
	return "", nil
}

// Fail applies the failure policy after a fatal error from Run (panic= on the command line):
// rescue shell (default, when a shell exists), reboot after a delay, or halt. With the real
// Actions it does not return after a successful reboot; callers must still never exit.
func Fail(env *Env, res *Result, err error) {
	env.defaults()
	cfg := ParseCmdline("")
	if res != nil {
		cfg = res.Config
	}
	phase := "boot"
	var f *Failure
	if errors.As(err, &f) {
		phase = f.Phase
	}
	if f != nil {
		env.Log.Errorf(phase, "the boot cannot continue") // the phase already said why
	} else {
		env.Log.Errorf(phase, "boot failed: %v", err)
	}
	if res != nil && res.Report != nil {
		res.Report.Errors = appendUnique(res.Report.Errors, phase+": "+errString(err))
		if werr := WriteReport(env.path("run/ramboot/boot.json"), res.Report); werr != nil {
			env.Log.Debugf(phase, "%v", werr)
		}
	}
	reboot := func() {
		env.Actions.Sync()
		if err := env.Actions.Reboot(RebootRestart); err != nil {
			env.Log.Errorf(phase, "reboot: %v", err)
		}
	}
	switch cfg.Panic {
	case PanicHalt:
		env.Log.Errorf(phase, "halted (panic=0); power-cycle to retry")
		env.Actions.Sync()
		return
	case PanicReboot:
		if cfg.PanicDelay > 0 {
			env.Log.Errorf(phase, "rebooting in %s (panic=%d)", cfg.PanicDelay, int(cfg.PanicDelay.Seconds()))
		} else {
			env.Log.Errorf(phase, "rebooting now (panic=-1)")
		}
		env.Sleep(cfg.PanicDelay)
		reboot()
		return
	}
	// Rescue shell: the initramfs's own, else the new root's (run chrooted: it is linked
	// against the new root's libc).
	chroot := ""
	sh, argv := findShell(env.path(""))
	if sh == "" && res != nil && res.NewRoot != "" {
		if p, a := findShell(res.NewRoot); p != "" {
			chroot, sh, argv = res.NewRoot, "/"+filepath.ToSlash(mustRel(res.NewRoot, p)), a
		}
	}
	if sh == "" && res != nil && len(res.Repos) > 0 && env.Deps.Install != nil {
		if dir, err := rescueRoot(env, res.Repos); err == nil {
			chroot, sh, argv = dir, "/bin/busybox", []string{"/bin/busybox", "sh"}
			env.Log.Errorf(phase, "rescue shell installed from the boot repository (busybox)")
		} else {
			env.Log.Errorf(phase, "no rescue shell from the boot repository: %v", err)
		}
	}
	if sh == "" {
		env.Log.Errorf(phase, "no rescue shell available; rebooting in %s", DefaultPanicDelay)
		env.Sleep(DefaultPanicDelay)
		reboot()
		return
	}
	// Unattended machines must not hang in a shell nobody uses: offer it, reboot if unanswered.
	env.Log.Errorf(phase, "press Enter within %s for a rescue shell, or the system reboots (panic=N: reboot without asking)", RescueWait)
	if !env.AskShell(RescueWait) {
		env.Log.Errorf(phase, "no answer: rebooting")
		reboot()
		return
	}
	env.Log.Errorf(phase, "starting a rescue shell; the system reboots when it exits")
	if err := env.Actions.Spawn(chroot, sh, argv, shellEnv); err != nil {
		env.Log.Errorf(phase, "rescue shell: %v", err)
	}
	reboot()
}

func mustRel(base, p string) string {
	r, err := filepath.Rel(base, p)
	if err != nil {
		return p
	}
	return r
}

func errString(err error) string {
	var f *Failure
	if errors.As(err, &f) {
		return f.Err.Error()
	}
	return err.Error()
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// rescueRoot installs busybox from the boot repositories into a small tmpfs, for a rescue shell
// when neither the initramfs nor the new root has one (e.g. the root could not be mounted). The
// initramfs's /dev, /proc, /sys and /media are bound inside so the user can look around.
func rescueRoot(env *Env, repos []string) (string, error) {
	dir := env.path("rescue")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if err := env.Actions.Mount("tmpfs", dir, "tmpfs", 0, "mode=0755,size=32m"); err != nil {
		return "", fmt.Errorf("tmpfs for the rescue shell: %w", err)
	}
	res, err := env.Deps.Install(context.Background(), InstallRequest{
		Root: dir, Repos: repos, KeysDir: env.path("etc/apk/keys"), Arch: env.Arch,
		World: []string{"busybox"}, Quiet: true, Out: io.Discard,
	})
	if err == nil && res != nil && len(res.Failed)+len(res.Dropped) > 0 {
		err = fmt.Errorf("busybox not installed: %s", strings.Join(append(res.Failed, res.Dropped...), "; "))
	}
	if err != nil {
		return "", err
	}
	if p, _ := findShell(dir); p == "" {
		return "", fmt.Errorf("no busybox in the rescue root")
	}
	for _, d := range []string{"dev", "proc", "sys", "media"} {
		dst := filepath.Join(dir, d)
		if os.MkdirAll(dst, 0o755) == nil {
			env.Actions.Mount(env.path(d), dst, "", MSBind|MSRec, "") // best effort
		}
	}
	return dir, nil
}
