package lbu

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/ramboot/ramboot/internal/testdata"
	"github.com/ramboot/ramboot/overlay"
)

// realLbuRoot is a minirootfs with Alpine's own lbu (alpine-conf from the 3.19 repository) and
// openssl installed by the real apk, configured with LBU_BACKUPDIR=/media/bk.
func realLbuRoot(t *testing.T) string {
	t.Helper()
	root := minirootfs(t)
	repo := testdata.Path(t, "alpine", "v3.19", "x86_64")
	os.MkdirAll(filepath.Join(root, "repo"), 0755)
	if b, err := exec.Command("cp", "-r", repo, filepath.Join(root, "repo")).CombinedOutput(); err != nil {
		t.Fatalf("copy repo: %v: %s", err, b)
	}
	if b, err := exec.Command("chroot", root, "/sbin/apk", "add", "--quiet", "--no-network", "--repository", "/repo",
		"--keys-dir", "/etc/apk/keys", "alpine-conf", "openssl").CombinedOutput(); err != nil {
		t.Fatalf("real apk add alpine-conf openssl: %v: %s", err, b)
	}
	os.RemoveAll(filepath.Join(root, "repo"))
	// Alpine's lbu names overlays after the kernel hostname (shared with the chroot).
	h, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "etc/hostname"), []byte(h+"\n"), 0644)
	os.MkdirAll(filepath.Join(root, "media/bk"), 0755)
	// lbu diff runs busybox diff, which wants /dev/null.
	if err := unix.Mknod(filepath.Join(root, "dev/null"), unix.S_IFCHR|0666, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatalf("mknod dev/null: %v", err)
	}
	os.WriteFile(filepath.Join(root, "etc/lbu/lbu.conf"), []byte("DEFAULT_CIPHER=aes-256-cbc\nLBU_BACKUPDIR=/media/bk\n"), 0644)
	return root
}

func realLbu(t *testing.T, root string, args ...string) string {
	t.Helper()
	out, err := exec.Command("chroot", append([]string{root, "/sbin/lbu"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("real lbu %v: %v: %s", args, err, out)
	}
	return string(out)
}

// Alpine's own lbu is the judge: same file list, our commits look unchanged to its status and
// diff, and its (encrypted) commits restore and compare clean with ours.
func TestInteropWithRealLbu(t *testing.T) {
	root := realLbuRoot(t)
	r := func(p string) string { return filepath.Join(root, p) }
	os.WriteFile(r("etc/motd"), []byte("welcome\n"), 0644)
	os.Chmod(r("etc/profile"), 0600)
	os.MkdirAll(r("etc/app/conf.d"), 0750)
	os.WriteFile(r("etc/app/conf.d/x.conf"), []byte("x=1\n"), 0640)
	os.MkdirAll(r("etc/runlevels/default"), 0755)
	os.Symlink("/etc/init.d/sshd", r("etc/runlevels/default/sshd"))
	os.MkdirAll(r("root/.ssh"), 0700)
	os.WriteFile(r("root/.ssh/authorized_keys"), []byte("ssh-ed25519 AAAA k\n"), 0600)
	os.WriteFile(r("etc/app/secret.tmp"), []byte("no"), 0600)
	realLbu(t, root, "include", "/root/.ssh")
	realLbu(t, root, "exclude", "etc/app/secret.tmp")

	// 1. Same file list as Alpine's `lbu list`.
	want := strings.Fields(realLbu(t, root, "list"))
	sort.Strings(want)
	got, err := FileList(root)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("FileList() differs from Alpine's lbu list (-alpine +ours):\n%s", d)
	}

	// 2. Our commit is what Alpine's lbu would have committed: its status and diff are empty.
	o := options(t, root)
	if err := Commit(context.Background(), o, CommitOptions{}); err != nil {
		t.Fatal(err)
	}
	if out := realLbu(t, root, "status"); strings.TrimSpace(out) != "" {
		t.Errorf("Alpine's lbu status after our commit = %q, want nothing", out)
	}
	if out := realLbu(t, root, "diff"); strings.TrimSpace(out) != "" {
		t.Errorf("Alpine's lbu diff after our commit = %q, want nothing", out)
	}

	// 3. Alpine's encrypted commit restores with ours and shows no changes in our status.
	os.WriteFile(r("etc/lbu/lbu.conf"), []byte("DEFAULT_CIPHER=aes-256-cbc\nLBU_BACKUPDIR=/media/bk\nENCRYPTION=$DEFAULT_CIPHER\nPASSWORD=pw\n"), 0644)
	realLbu(t, root, "commit", "-d")
	h, _ := os.Hostname()
	enc := filepath.Join(root, "media/bk", h+".apkovl.tar.gz.aes-256-cbc")
	dst := t.TempDir()
	res, err := overlay.Restore(enc, dst, overlay.RestoreOptions{Password: func(string) ([]byte, error) { return []byte("pw"), nil }})
	if err != nil {
		t.Fatalf("overlay.Restore(Alpine's encrypted overlay): %v", err)
	}
	sort.Strings(res.Placed)
	var wantPlaced []string
	for _, p := range got {
		wantPlaced = append(wantPlaced, strings.TrimSuffix(p, "/"))
	}
	// Alpine's own lbu.conf is part of its commit and of ours alike.
	if d := cmp.Diff(wantPlaced, res.Placed); d != "" {
		t.Errorf("Restore(Alpine overlay).Placed differs from the file list (-want +got):\n%s", d)
	}
	for _, p := range []string{"root/.ssh/authorized_keys", "etc/motd", "etc/app/conf.d/x.conf"} {
		w, _ := os.ReadFile(r(p))
		g, _ := os.ReadFile(filepath.Join(dst, p))
		if string(w) != string(g) {
			t.Errorf("restored %s = %q, want %q", p, g, w)
		}
	}
	o = options(t, root)
	ds, path, err := Status(context.Background(), o, "")
	if err != nil {
		t.Fatalf("Status() against Alpine's overlay: %v", err)
	}
	if path != enc || len(ds) != 0 {
		t.Errorf("Status() against Alpine's overlay = %v (compared with %s), want no changes against %s", ds, path, enc)
	}
}
