package bootmedia_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/ramboot/ramboot/internal/bootmedia"
)

// kernelMounter is the real mount(2) edge (what boot.Actions does at boot).
type kernelMounter struct{}

func (kernelMounter) Mount(source, target, fstype string, flags uintptr, data string) error {
	return unix.Mount(source, target, fstype, flags, data)
}

func (kernelMounter) Unmount(target string, flags int) error { return unix.Unmount(target, flags) }

func kernelHasFS(fstype string) bool {
	b, err := os.ReadFile("/proc/filesystems")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 1 && f[0] == fstype {
			return true
		}
	}
	return false
}

func runTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("prerequisite missing: %s", name)
	}
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(bytes.TrimSpace(out))
}

// attach binds img to a read-only loop device and returns the device path.
func attach(t *testing.T, img string) string {
	t.Helper()
	dev := runTool(t, "losetup", "--find", "--show", "--read-only", img)
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	return dev
}

// TestFindRealKernelMounts runs Find against real filesystems on loop devices with the real
// mount(2): ext4 (made by mkfs.ext4 -d, like a data partition holding a repository and an
// apkovl), squashfs (holds nothing: must be unmounted), and vfat/iso9660 where the running kernel
// supports them.
func TestFindRealKernelMounts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("prerequisite missing: root (loop devices, mount)")
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		t.Skipf("prerequisite missing: loop devices: %v", err)
	}
	if !kernelHasFS("ext4") || !kernelHasFS("squashfs") {
		t.Skip("prerequisite missing: ext4 and squashfs in /proc/filesystems")
	}
	e := newEnv(t)
	addLoop := func(name, img string) {
		e.addSys(t, name, 1<<16)
		if err := os.Symlink(attach(t, img), filepath.Join(e.dev, name)); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()

	extTree := tree(t, "apks/.boot_repository", "apks/x86_64/APKINDEX.tar.gz", "box.apkovl.tar.gz", "box.apkovl.tar.gz.new")
	extImg := filepath.Join(dir, "ext4.img")
	runTool(t, "truncate", "-s", "16M", extImg)
	runTool(t, "mkfs.ext4", "-q", "-F", "-L", "ALPDATA", "-d", extTree, extImg)
	addLoop("vdb", extImg)

	sqImg := filepath.Join(dir, "modloop.sq")
	runTool(t, "mksquashfs", tree(t, "modules/6.1/kernel/x.ko"), sqImg, "-quiet", "-noappend", "-no-progress")
	addLoop("vdc", sqImg)

	wantRepos := []string{filepath.Join(e.media, "vdb", "apks")}
	wantOverlays := []string{filepath.Join(e.media, "vdb", "box.apkovl.tar.gz")}
	if kernelHasFS("iso9660") {
		isoImg := filepath.Join(dir, "cd.iso")
		runTool(t, "xorriso", "-as", "mkisofs", "-quiet", "-J", "-R", "-V", "ALPINE", "-o", isoImg, tree(t, "alpine/.boot_repository"))
		addLoop("sr0", isoImg)
		wantRepos = append(wantRepos, filepath.Join(e.media, "sr0", "alpine"))
	} else {
		t.Log("kernel lacks iso9660: CD case not covered here (QEMU tests cover it)")
	}

	o := e.opts()
	o.Mounter = kernelMounter{}
	res, err := bootmedia.Find(context.Background(), o)
	if err != nil {
		t.Fatalf("Find() error: %v", err)
	}
	for _, m := range res.Kept() {
		mp := m.MountPoint
		t.Cleanup(func() { unix.Unmount(mp, unix.MNT_DETACH) })
	}
	t.Logf("Find() took %v: %s\n%s", res.Elapsed, res.Why, strings.Join(res.Log, "\n"))
	// vdb has repository and apkovl; sr0 a repository only: vdb sorts first.
	if d := cmp.Diff(wantRepos, res.Repos); d != "" {
		t.Errorf("Find() repos mismatch (-want +got):\n%s", d)
	}
	if d := cmp.Diff(wantOverlays, res.Overlays); d != "" {
		t.Errorf("Find() overlays mismatch (-want +got):\n%s", d)
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mounts), filepath.Join(e.media, "vdb")+" ro") {
		t.Errorf("%s is not mounted read-only per /proc/self/mountinfo", filepath.Join(e.media, "vdb"))
	}
	if strings.Contains(string(mounts), filepath.Join(e.media, "vdc")) {
		t.Errorf("squashfs without repository or apkovl is still mounted at %s", filepath.Join(e.media, "vdc"))
	}
	r := reasons(res)
	if !strings.HasPrefix(r["vdc"], "unmounted:") {
		t.Errorf("Find() vdc reason = %q, want unmounted", r["vdc"])
	}
	if res.Elapsed > 2*time.Second {
		t.Errorf("Find() took %v, want < 2s", res.Elapsed)
	}
}
