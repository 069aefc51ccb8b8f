package testdata

import (
	"bytes"
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// MinirootfsTarball is the official Alpine minirootfs in the shared data; it holds the real
// apk-tools 2.14.4, the judge of formats and resolver answers.
const MinirootfsTarball = "alpine-minirootfs-3.19.4-x86_64.tar.gz"

// Minirootfs extracts Alpine's minirootfs (with its owners, so it needs root) into a fresh
// temporary directory and returns it. It skips, saying why, only without root, tar or the data.
func Minirootfs(t testing.TB) string {
	t.Helper()
	tgz := Path(t, "alpine", "minirootfs", MinirootfsTarball)
	if os.Geteuid() != 0 {
		t.Skip("prerequisite missing: root (to extract the minirootfs with its owners and chroot into it)")
	}
	if _, err := exec.LookPath("tar"); err != nil {
		t.Skip("prerequisite missing: tar")
	}
	dir := t.TempDir()
	if out, err := exec.Command("tar", "-xzf", tgz, "-C", dir).CombinedOutput(); err != nil {
		t.Fatalf("extract %s: %v\n%s", tgz, err, out)
	}
	return dir
}

// RealApk runs the minirootfs' own apk chrooted into mrf and returns its stdout and stderr.
func RealApk(t testing.TB, mrf string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.Command("/sbin/apk", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: mrf}
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.String(), errb.String(), err
}
