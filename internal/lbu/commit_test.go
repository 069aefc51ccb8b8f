package lbu

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/ramboot/ramboot/overlay"
)

// newRoot is a minirootfs with hostname "box" and lbu.conf lines conf.
func newRoot(t *testing.T, conf string) string {
	t.Helper()
	root := minirootfs(t)
	os.WriteFile(filepath.Join(root, "etc/hostname"), []byte("box\n"), 0644)
	os.MkdirAll(filepath.Join(root, "etc/lbu"), 0755)
	if err := os.WriteFile(filepath.Join(root, "etc/lbu/lbu.conf"), []byte(conf), 0644); err != nil {
		t.Fatal(err)
	}
	return root
}

func options(t *testing.T, root string) *Options {
	t.Helper()
	cfg, err := LoadConfig(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &Options{Root: root, Config: cfg}
}

func commit(t *testing.T, root string, co CommitOptions) {
	t.Helper()
	if err := Commit(context.Background(), options(t, root), co); err != nil {
		t.Fatalf("Commit(%+v) error: %v", co, err)
	}
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

// overlayFile reads one member of a plain overlay.
func overlayFile(t *testing.T, ovl, name string) string {
	t.Helper()
	var got *string
	gz, _, err := overlay.Load(ovl, overlay.RestoreOptions{})
	if err != nil {
		t.Fatalf("Load(%s): %v", ovl, err)
	}
	m, err := ReadManifest(gz, 1<<30, true)
	if err != nil {
		t.Fatalf("ReadManifest(%s): %v", ovl, err)
	}
	if e, ok := m[name]; ok {
		s := string(e.Data)
		got = &s
	}
	if got == nil {
		return "<missing>"
	}
	return *got
}

func TestCommitBackupsRotateAndPrune(t *testing.T) {
	root := newRoot(t, "LBU_BACKUPDIR=/media/bk\nBACKUP_LIMIT=2\n")
	bk := filepath.Join(root, "media/bk")
	os.MkdirAll(bk, 0755)
	cur := filepath.Join(bk, "box.apkovl.tar.gz")
	for gen := 1; gen <= 4; gen++ {
		os.WriteFile(filepath.Join(root, "etc/motd"), []byte(strings.Repeat("x", gen)), 0644)
		if gen > 1 {
			// Backups are named after the replaced file's mtime: make them distinct.
			ts := time.Date(2024, 1, gen, 0, 0, 0, 0, time.UTC)
			os.Chtimes(cur, ts, ts)
		}
		commit(t, root, CommitOptions{})
	}
	want := []string{"box.20240103000000.tar.gz", "box.20240104000000.tar.gz", "box.apkovl.tar.gz"}
	if d := cmp.Diff(want, listDir(t, bk)); d != "" {
		t.Fatalf("media after 4 commits with BACKUP_LIMIT=2 (-want +got):\n%s", d)
	}
	for f, w := range map[string]string{"box.apkovl.tar.gz": "xxxx", "box.20240104000000.tar.gz": "xxx", "box.20240103000000.tar.gz": "xx"} {
		if got := overlayFile(t, filepath.Join(bk, f), "etc/motd"); got != w {
			t.Errorf("%s: etc/motd = %q, want %q", f, got, w)
		}
	}
	bs, err := ListBackups(options(t, root), "")
	if err != nil || len(bs) != 2 {
		t.Errorf("ListBackups() = %q, %v, want the 2 backups", bs, err)
	}
	// Revert to the oldest backup: it becomes current, the replaced one is backed up.
	if err := Revert(context.Background(), options(t, root), "box.20240103000000.tar.gz", ""); err != nil {
		t.Fatalf("Revert() error: %v", err)
	}
	if got := overlayFile(t, cur, "etc/motd"); got != "xx" {
		t.Errorf("after revert: etc/motd = %q, want %q", got, "xx")
	}
	if err := Revert(context.Background(), options(t, root), "box.19990101000000.tar.gz", ""); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("Revert(missing) error = %v, want file not found", err)
	}
}

func TestCommitDefaultBackupLimit(t *testing.T) {
	root := newRoot(t, "LBU_BACKUPDIR=/media/bk\n")
	bk := filepath.Join(root, "media/bk")
	os.MkdirAll(bk, 0755)
	for gen := 1; gen <= 5; gen++ {
		if gen > 1 {
			ts := time.Date(2024, 1, gen, 0, 0, 0, 0, time.UTC)
			os.Chtimes(filepath.Join(bk, "box.apkovl.tar.gz"), ts, ts)
		}
		commit(t, root, CommitOptions{})
	}
	if n := len(listDir(t, bk)); n != 1+DefaultBackupLimit {
		t.Errorf("files after 5 commits without BACKUP_LIMIT = %d (%q), want %d", n, listDir(t, bk), 1+DefaultBackupLimit)
	}
}

// snapshotDir maps each file of dir to its content and mtime.
func snapshotDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, n := range listDir(t, dir) {
		p := filepath.Join(dir, n)
		b, _ := os.ReadFile(p)
		info, _ := os.Stat(p)
		out[n] = string(b) + "|" + info.ModTime().String()
	}
	return out
}

func TestCommitDryRunChangesNothing(t *testing.T) {
	root := newRoot(t, "LBU_BACKUPDIR=/media/bk\nBACKUP_LIMIT=0\n")
	bk := filepath.Join(root, "media/bk")
	os.MkdirAll(bk, 0755)
	commit(t, root, CommitOptions{})
	for _, n := range []string{"box.20240101000000.tar.gz", "box.20240202000000.tar.gz", "box.apkovl.tar.gz.new", "other.apkovl.tar.gz"} {
		os.WriteFile(filepath.Join(bk, n), []byte(n), 0644)
	}
	before := snapshotDir(t, bk)
	var out bytes.Buffer
	o := options(t, root)
	o.Out = &out
	os.WriteFile(filepath.Join(root, "etc/motd"), []byte("changed"), 0644)
	if err := Commit(context.Background(), o, CommitOptions{DryRun: true, DeleteOld: true}); err != nil {
		t.Fatalf("Commit(-n -d) error: %v", err)
	}
	if d := cmp.Diff(before, snapshotDir(t, bk)); d != "" {
		t.Errorf("Commit(-n) changed the medium (-before +after):\n%s", d)
	}
	for _, w := range []string{"Would create", "Would remove " + filepath.Join(bk, "other.apkovl.tar.gz")} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("Commit(-n) output %q lacks %q", out.String(), w)
		}
	}
}

func TestCommitOtherOverlaysAndLeftovers(t *testing.T) {
	root := newRoot(t, "LBU_BACKUPDIR=/media/bk\n")
	bk := filepath.Join(root, "media/bk")
	os.MkdirAll(bk, 0755)
	os.WriteFile(filepath.Join(bk, "oldname.apkovl.tar.gz"), []byte("other host"), 0644)
	os.WriteFile(filepath.Join(bk, "box.apkovl.tar.gz.new"), []byte("alpine leftover"), 0644)
	os.WriteFile(filepath.Join(bk, ".lbu-commit-123.tmp"), []byte("our leftover"), 0644)
	err := Commit(context.Background(), options(t, root), CommitOptions{})
	if err == nil || !strings.Contains(err.Error(), "oldname.apkovl.tar.gz") || !strings.Contains(err.Error(), "-d") {
		t.Fatalf("Commit() with another host's overlay error = %v, want one naming it and -d", err)
	}
	if _, err := os.Stat(filepath.Join(bk, "box.apkovl.tar.gz")); err == nil {
		t.Errorf("Commit() wrote an overlay although it failed")
	}
	commit(t, root, CommitOptions{DeleteOld: true})
	if d := cmp.Diff([]string{"box.apkovl.tar.gz"}, listDir(t, bk)); d != "" {
		t.Errorf("media after commit -d (-want +got):\n%s", d)
	}
}

func TestCommitEncryptedInteropWithAlpine(t *testing.T) {
	root := newRoot(t, "LBU_BACKUPDIR=/media/bk\nENCRYPTION=$DEFAULT_CIPHER\nPASSWORD=s3cret\n")
	bk := filepath.Join(root, "media/bk")
	os.MkdirAll(bk, 0755)
	// A plain overlay of the same host from before encryption was enabled is replaced (and
	// kept as a backup), not left to compete at boot.
	os.WriteFile(filepath.Join(root, "etc/motd"), []byte("plain era\n"), 0644)
	o := options(t, root)
	o.Config.Encryption = ""
	if err := Commit(context.Background(), o, CommitOptions{}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "etc/motd"), []byte("secret era\n"), 0644)
	commit(t, root, CommitOptions{})
	files := listDir(t, bk)
	if len(files) != 2 || files[1] != "box.apkovl.tar.gz.aes-256-cbc" || !strings.HasSuffix(files[0], ".tar.gz") {
		t.Fatalf("media = %q, want a plain backup and box.apkovl.tar.gz.aes-256-cbc", files)
	}
	ovl := filepath.Join(bk, "box.apkovl.tar.gz.aes-256-cbc")
	// Alpine's initramfs: openssl enc -d -aes-256-cbc | tar --numeric-owner -zx (busybox).
	ossl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("prerequisite missing: openssl")
	}
	plain, err := exec.Command(ossl, "enc", "-d", "-aes-256-cbc", "-pass", "pass:s3cret", "-in", ovl).Output()
	if err != nil {
		t.Fatalf("openssl decrypt of our overlay: %v", err)
	}
	os.WriteFile(filepath.Join(root, "ovl.tar.gz"), plain, 0644)
	os.Mkdir(filepath.Join(root, "sysroot"), 0755)
	if b, err := exec.Command("chroot", root, "/bin/busybox", "tar", "--numeric-owner", "-C", "/sysroot", "-zxf", "/ovl.tar.gz").CombinedOutput(); err != nil {
		t.Fatalf("busybox tar of our overlay: %v: %s", err, b)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "sysroot/etc/motd")); string(b) != "secret era\n" {
		t.Errorf("busybox-restored etc/motd = %q, want %q", b, "secret era\n")
	}
	// And our own restore with a key file.
	key := filepath.Join(t.TempDir(), "key")
	os.WriteFile(key, []byte("s3cret\n"), 0600)
	dst := t.TempDir()
	if _, err := overlay.Restore(ovl, dst, overlay.RestoreOptions{KeyFile: key}); err != nil {
		t.Fatalf("overlay.Restore(our encrypted overlay): %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "etc/motd")); string(b) != "secret era\n" {
		t.Errorf("restored etc/motd = %q, want %q", b, "secret era\n")
	}
}

// Our plain overlays are what Alpine's initramfs restores: busybox tar -zxf gives the same files,
// with relative member names.
func TestCommitPlainRestoresWithBusybox(t *testing.T) {
	root := newRoot(t, "LBU_BACKUPDIR=/media/bk\n")
	bk := filepath.Join(root, "media/bk")
	os.MkdirAll(bk, 0755)
	os.MkdirAll(filepath.Join(root, "root/.ssh"), 0700)
	os.WriteFile(filepath.Join(root, "root/.ssh/authorized_keys"), []byte("ssh-ed25519 AAAA k\n"), 0600)
	os.MkdirAll(filepath.Join(root, "etc/runlevels/default"), 0755)
	if err := os.Symlink("/etc/init.d/sshd", filepath.Join(root, "etc/runlevels/default/sshd")); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "etc/motd"), []byte("hi\n"), 0640)
	os.Chmod(filepath.Join(root, "etc/motd"), 0640)
	if _, err := UpdateList(root, '+', []string{"/root/.ssh"}, false); err != nil {
		t.Fatal(err)
	}
	commit(t, root, CommitOptions{})
	ovl := filepath.Join(bk, "box.apkovl.tar.gz")
	err := overlay.Walk(ovl, overlay.RestoreOptions{}, func(h *tar.Header, _ io.Reader) error {
		if strings.HasPrefix(h.Name, "/") || strings.HasPrefix(h.Name, "./") || strings.Contains(h.Name, "..") {
			t.Errorf("member %q is not a plain relative name", h.Name)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(ovl)
	os.WriteFile(filepath.Join(root, "ovl.tar.gz"), data, 0644)
	os.Mkdir(filepath.Join(root, "sysroot"), 0755)
	if b, err := exec.Command("chroot", root, "/bin/busybox", "tar", "-C", "/sysroot", "-zxf", "/ovl.tar.gz").CombinedOutput(); err != nil {
		t.Fatalf("busybox tar: %v: %s", err, b)
	}
	for _, p := range []string{"root/.ssh/authorized_keys", "etc/motd", "etc/hostname", "etc/apk/world"} {
		want, _ := os.ReadFile(filepath.Join(root, p))
		got, err := os.ReadFile(filepath.Join(root, "sysroot", p))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("busybox-restored %s = %q, %v, want %q", p, got, err, want)
		}
	}
	var st unix.Stat_t
	unix.Lstat(filepath.Join(root, "sysroot/etc/motd"), &st)
	if st.Mode&07777 != 0640 {
		t.Errorf("restored etc/motd mode = %04o, want 0640", st.Mode&07777)
	}
	if l, _ := os.Readlink(filepath.Join(root, "sysroot/etc/runlevels/default/sshd")); l != "/etc/init.d/sshd" {
		t.Errorf("restored runlevel symlink = %q, want /etc/init.d/sshd", l)
	}
}

func TestCommitHooks(t *testing.T) {
	root := newRoot(t, "LBU_BACKUPDIR=/media/bk\n")
	bk := filepath.Join(root, "media/bk")
	os.MkdirAll(bk, 0755)
	pre, post := filepath.Join(root, "etc/lbu/pre-package.d"), filepath.Join(root, "etc/lbu/post-package.d")
	os.MkdirAll(pre, 0755)
	os.MkdirAll(post, 0755)
	marker := filepath.Join(t.TempDir(), "post-ran")
	os.WriteFile(filepath.Join(post, "50-mark"), []byte("#!/bin/sh\necho ran > "+marker+"\n"), 0755)
	os.WriteFile(filepath.Join(pre, "10-gen"), []byte("#!/bin/sh\necho generated > \"$ROOT/etc/generated.conf\"\n"), 0755)
	o := options(t, root)
	o.Hooks = true
	if err := Commit(context.Background(), o, CommitOptions{}); err != nil {
		t.Fatalf("Commit() with hooks: %v", err)
	}
	if got := overlayFile(t, filepath.Join(bk, "box.apkovl.tar.gz"), "etc/generated.conf"); got != "generated\n" {
		t.Errorf("file made by pre-package hook = %q, want it in the overlay", got)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("post-package hook did not run: %v", err)
	}
	// A failing pre hook aborts the commit and leaves the overlay as it was.
	before := snapshotDir(t, bk)
	os.WriteFile(filepath.Join(pre, "20-fail"), []byte("#!/bin/sh\nexit 3\n"), 0755)
	os.Remove(marker)
	err := Commit(context.Background(), o, CommitOptions{})
	if err == nil || !strings.Contains(err.Error(), "20-fail") {
		t.Errorf("Commit() with failing hook error = %v, want one naming the hook", err)
	}
	if d := cmp.Diff(before, snapshotDir(t, bk)); d != "" {
		t.Errorf("failed commit changed the medium:\n%s", d)
	}
	// Like lbu, a failing pre-package hook returns before the post-package hooks.
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("post-package hook ran after a pre-package failure, want it skipped as lbu does")
	}
}

// mountTmpfs mounts a tmpfs (read-only when ro) at dir for the test.
func mountTmpfs(t *testing.T, dir, opts string, ro bool) {
	t.Helper()
	os.MkdirAll(dir, 0755)
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, opts); err != nil {
		t.Skipf("prerequisite missing: mounting tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	if ro {
		if err := unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			t.Fatal(err)
		}
	}
}

func isReadOnly(t *testing.T, dir string) bool {
	t.Helper()
	m, err := findMount(dir)
	if err != nil || m == nil {
		t.Fatalf("findMount(%s) = %v, %v", dir, m, err)
	}
	return m.opts["ro"]
}

// The boot medium is mounted read-only at /media/<dev>: commit remounts it read-write for the
// write and read-only again after.
func TestCommitRemountsReadOnlyMedia(t *testing.T) {
	root := newRoot(t, "LBU_MEDIA=vda\n")
	mnt := filepath.Join(root, "media/vda")
	mountTmpfs(t, mnt, "size=4m,mode=0755", true)
	commit(t, root, CommitOptions{Media: ""})
	if !isReadOnly(t, mnt) {
		t.Errorf("medium %s is read-write after commit, want read-only again", mnt)
	}
	if d := cmp.Diff([]string{"box.apkovl.tar.gz"}, listDir(t, mnt)); d != "" {
		t.Errorf("medium after commit (-want +got):\n%s", d)
	}
	if got := overlayFile(t, filepath.Join(mnt, "box.apkovl.tar.gz"), "etc/hostname"); got != "box\n" {
		t.Errorf("committed etc/hostname = %q, want %q", got, "box\n")
	}
	// Explicit MEDIA argument, also with the /media/ prefix.
	if err := Commit(context.Background(), options(t, root), CommitOptions{Media: "/media/vda"}); err != nil {
		t.Errorf("Commit(/media/vda) error: %v", err)
	}
}

func TestCommitMediumFull(t *testing.T) {
	root := newRoot(t, "LBU_MEDIA=vda\n")
	mnt := filepath.Join(root, "media/vda")
	mountTmpfs(t, mnt, "size=64k,mode=0755", true)
	commit(t, root, CommitOptions{})
	before := snapshotDir(t, mnt)
	// Random data does not compress: the new overlay cannot fit.
	big := make([]byte, 256<<10)
	f, _ := os.Open("/dev/urandom")
	f.Read(big)
	f.Close()
	os.WriteFile(filepath.Join(root, "etc/big.bin"), big, 0644)
	err := Commit(context.Background(), options(t, root), CommitOptions{})
	if err == nil || !strings.Contains(err.Error(), "medium full") || !strings.Contains(err.Error(), "intact") {
		t.Fatalf("Commit() on a full medium error = %v, want a clear 'medium full' error", err)
	}
	if d := cmp.Diff(before, snapshotDir(t, mnt)); d != "" {
		t.Errorf("failed commit changed the medium (-before +after):\n%s", d)
	}
	if !isReadOnly(t, mnt) {
		t.Errorf("medium is read-write after a failed commit, want read-only")
	}
}

func TestCommitVanishedMedium(t *testing.T) {
	root := newRoot(t, "LBU_MEDIA=vda\n")
	os.MkdirAll(filepath.Join(root, "media/vda"), 0755) // mount point, nothing mounted
	start := time.Now()
	err := Commit(context.Background(), options(t, root), CommitOptions{})
	if err == nil || !strings.Contains(err.Error(), "not mounted") {
		t.Errorf("Commit() to an unmounted medium error = %v, want 'not mounted'", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Commit() to an unmounted medium took %v, want a quick failure", d)
	}
	if n := len(listDir(t, filepath.Join(root, "media/vda"))); n != 0 {
		t.Errorf("Commit() wrote %d files into the bare mount point", n)
	}
	err = Commit(context.Background(), options(t, root), CommitOptions{Media: "nosuch"})
	if err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Errorf("Commit(nosuch) error = %v, want one naming the medium", err)
	}
	o := options(t, root)
	o.Config.Media = ""
	if err := Commit(context.Background(), o, CommitOptions{}); err == nil || !strings.Contains(err.Error(), "LBU_MEDIA") {
		t.Errorf("Commit() without any medium error = %v, want one mentioning LBU_MEDIA", err)
	}
}

// A real boot medium (vfat, as on USB sticks, and ext4) on a loop device, mounted read-only as
// at boot: commit remounts it, rotates the backup (vfat has no hard links and 2 s timestamps)
// and leaves it read-only.
func TestCommitOnBlockMedium(t *testing.T) {
	for _, fs := range []string{"vfat", "ext4"} {
		t.Run(fs, func(t *testing.T) { testCommitOnBlockMedium(t, fs) })
	}
}

func testCommitOnBlockMedium(t *testing.T, fstype string) {
	mkfs := "mkfs." + fstype
	for _, tool := range []string{mkfs, "losetup"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("prerequisite missing: %s", tool)
		}
	}
	if fss, _ := os.ReadFile("/proc/filesystems"); !strings.Contains(string(fss), "\t"+fstype+"\n") {
		t.Skipf("prerequisite missing: %s support in the running kernel", fstype)
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		t.Skipf("prerequisite missing: loop devices: %v", err)
	}
	root := newRoot(t, "LBU_MEDIA=sdb1\nBACKUP_LIMIT=1\n")
	img := filepath.Join(t.TempDir(), fstype+".img")
	if err := os.WriteFile(img, nil, 0644); err != nil {
		t.Fatal(err)
	}
	os.Truncate(img, 16<<20)
	args := []string{img}
	if fstype == "ext4" {
		args = []string{"-q", "-F", img}
	}
	if b, err := exec.Command(mkfs, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", mkfs, err, b)
	}
	out, err := exec.Command("losetup", "-f", "--show", img).Output()
	if err != nil {
		t.Skipf("prerequisite missing: a free loop device: %v", err)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	mnt := filepath.Join(root, "media/sdb1")
	os.MkdirAll(mnt, 0755)
	if err := unix.Mount(dev, mnt, fstype, unix.MS_RDONLY, ""); err != nil {
		t.Fatalf("mount %s: %v", fstype, err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	os.WriteFile(filepath.Join(root, "etc/motd"), []byte("one\n"), 0644)
	commit(t, root, CommitOptions{})
	ts := time.Date(2024, 3, 4, 5, 6, 8, 0, time.UTC)
	unix.Mount("", mnt, "", unix.MS_REMOUNT, "")
	os.Chtimes(filepath.Join(mnt, "box.apkovl.tar.gz"), ts, ts)
	unix.Mount("", mnt, "", unix.MS_REMOUNT|unix.MS_RDONLY, "")
	os.WriteFile(filepath.Join(root, "etc/motd"), []byte("two\n"), 0644)
	commit(t, root, CommitOptions{})
	if !isReadOnly(t, mnt) {
		t.Errorf("%s medium is read-write after commit, want read-only", fstype)
	}
	want := []string{"box.20240304050608.tar.gz", "box.apkovl.tar.gz"}
	got := listDir(t, mnt)
	got = slices.DeleteFunc(got, func(n string) bool { return n == "lost+found" })
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("%s medium after two commits (-want +got):\n%s", fstype, d)
	}
	if got := overlayFile(t, filepath.Join(mnt, "box.apkovl.tar.gz"), "etc/motd"); got != "two\n" {
		t.Errorf("current etc/motd = %q, want %q", got, "two\n")
	}
	if got := overlayFile(t, filepath.Join(mnt, want[0]), "etc/motd"); got != "one\n" {
		t.Errorf("backup etc/motd = %q, want %q", got, "one\n")
	}
}

// A read-only bind of a writable filesystem is made writable by a bind remount and restored
// the same way: the filesystem's other mounts stay writable.
func TestCommitReadOnlyBindMount(t *testing.T) {
	root := newRoot(t, "LBU_MEDIA=vdb\n")
	backing := filepath.Join(t.TempDir(), "backing")
	mountTmpfs(t, backing, "size=4m,mode=0755", false)
	mnt := filepath.Join(root, "media/vdb")
	os.MkdirAll(mnt, 0755)
	if err := unix.Mount(backing, mnt, "", unix.MS_BIND, ""); err != nil {
		t.Fatalf("bind mount: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	if err := unix.Mount("", mnt, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
		t.Fatalf("read-only bind remount: %v", err)
	}
	commit(t, root, CommitOptions{})
	if !isReadOnly(t, mnt) {
		t.Errorf("bind mount %s is read-write after commit, want read-only", mnt)
	}
	if isReadOnly(t, backing) {
		t.Errorf("backing mount %s became read-only, want it untouched", backing)
	}
	if _, err := os.Stat(filepath.Join(backing, "box.apkovl.tar.gz")); err != nil {
		t.Errorf("overlay not written through the bind mount: %v", err)
	}
}

// Concurrent commits to one read-only medium are serialised by the lock: all succeed and the
// medium ends read-only with one complete overlay.
func TestConcurrentCommits(t *testing.T) {
	root := newRoot(t, "LBU_MEDIA=vdc\nBACKUP_LIMIT=10\n")
	mnt := filepath.Join(root, "media/vdc")
	mountTmpfs(t, mnt, "size=8m,mode=0755", true)
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		go func() { errs <- Commit(context.Background(), options(t, root), CommitOptions{}) }()
	}
	for i := 0; i < 4; i++ {
		if err := <-errs; err != nil {
			t.Errorf("concurrent Commit() error: %v", err)
		}
	}
	if !isReadOnly(t, mnt) {
		t.Errorf("medium is read-write after concurrent commits, want read-only")
	}
	cands, ignored, err := overlay.Scan(mnt)
	if err != nil || len(cands) != 1 || len(ignored) != 0 {
		t.Errorf("medium after concurrent commits: candidates %v, ignored %q, %v; want exactly one overlay", cands, ignored, err)
	}
}

// A medium whose device disappeared (unplugged USB stick: the mount stays, the device node goes)
// fails at once with a clear error.
func TestCommitUnpluggedMedium(t *testing.T) {
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		t.Skip("prerequisite missing: mkfs.ext4")
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		t.Skipf("prerequisite missing: loop devices: %v", err)
	}
	root := newRoot(t, "LBU_MEDIA=sdc1\n")
	dir := t.TempDir()
	img := filepath.Join(dir, "img")
	os.WriteFile(img, nil, 0644)
	os.Truncate(img, 8<<20)
	if b, err := exec.Command("mkfs.ext4", "-q", "-F", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, b)
	}
	out, err := exec.Command("losetup", "-f", "--show", img).Output()
	if err != nil {
		t.Skipf("prerequisite missing: a free loop device: %v", err)
	}
	loop := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", loop).Run() })
	var st unix.Stat_t
	if err := unix.Stat(loop, &st); err != nil {
		t.Fatal(err)
	}
	// Our own node for the device, so that it can "disappear" without touching /dev.
	node := filepath.Join(dir, "sdc1")
	if err := unix.Mknod(node, unix.S_IFBLK|0600, int(st.Rdev)); err != nil {
		t.Fatal(err)
	}
	mnt := filepath.Join(root, "media/sdc1")
	os.MkdirAll(mnt, 0755)
	if err := unix.Mount(node, mnt, "ext4", unix.MS_RDONLY, ""); err != nil {
		t.Fatalf("mount: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	os.Remove(node)
	start := time.Now()
	err = Commit(context.Background(), options(t, root), CommitOptions{})
	if err == nil || !strings.Contains(err.Error(), "is gone") {
		t.Errorf("Commit() to an unplugged medium error = %v, want one saying its device is gone", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Commit() to an unplugged medium took %v, want a prompt failure", d)
	}
	if !isReadOnly(t, mnt) {
		t.Errorf("unplugged medium was remounted read-write")
	}
}

func TestLeftoverFiles(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"h.apkovl.tar.gz.new", "other.apkovl.tar.gz.new", ".lbu-commit-1.tmp", ".lbu-backup-2.tmp",
		"h.apkovl.tar.gz.bak", ".hidden.apkovl.tar.gz", "h.apkovl.tar.gz", "notes.txt"} {
		os.WriteFile(filepath.Join(dir, n), nil, 0644)
	}
	os.Mkdir(filepath.Join(dir, "d.apkovl.tar.gz.new"), 0755)
	_, ignored, err := overlay.Scan(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range leftoverFiles(dir, ignored) {
		got = append(got, filepath.Base(p))
	}
	sort.Strings(got)
	want := []string{".lbu-backup-2.tmp", ".lbu-commit-1.tmp", "h.apkovl.tar.gz.new", "other.apkovl.tar.gz.new"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("leftoverFiles() (-want +got):\n%s", d)
	}
}
