package boot

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ramboot/ramboot/internal/testdata"
)

// TestBootRealInstall boots (with recorded kernel actions) from a medium carrying the real Alpine
// 3.19.1 repository, with a real apkovl, installing the world with internal/apkinstall; then the
// real apk 2.14.4 (minirootfs chroot) must accept the new root and list the same packages.
func TestBootRealInstall(t *testing.T) {
	shared := testdata.Shared(t)
	mrf := testdata.Minirootfs(t) // skips without root: package scripts and the real apk run chrooted
	ovl, err := os.ReadFile(filepath.Join(shared, "alpine/apkovl/multipi4-localhost.apkovl.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	sc := scenario{
		cmdline: "console=ttyS0 pkgs=busybox-mdev-openrc,openssh,chrony,ca-certificates-bundle,no-such-package",
		media:   []fakeMedium{{dev: "vda", fstype: "vfat", files: map[string][]byte{"localhost.apkovl.tar.gz": ovl}}},
	}
	h := newHarness(t, sc)
	// The fake initramfs lives inside the minirootfs so the real apk can see the new root.
	initramfs := filepath.Join(mrf, "initramfs")
	if err := os.Rename(h.root, initramfs); err != nil {
		// t.TempDir()s may be on another filesystem: copy instead.
		if err := copyTree(h.root, initramfs); err != nil {
			t.Fatal(err)
		}
	}
	keys, _ := filepath.Glob(filepath.Join(shared, "alpine/keys/*.pub"))
	for _, k := range keys {
		if err := copyFile(k, filepath.Join(initramfs, "etc/apk/keys", filepath.Base(k)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	repoDir := filepath.Join(shared, "alpine/v3.19")
	h.root, h.rec.Strip, h.env.Root = initramfs, initramfs, initramfs
	h.env.SelfExe = filepath.Join(initramfs, "init")
	h.env.Deps.Install = InstallApk
	devOf := h.env.DevOf
	h.env.DevOf = func(p string) (uint64, error) {
		rel, _ := filepath.Rel(initramfs, p)
		switch {
		case rel == "sysroot" || strings.HasPrefix(rel, "sysroot/"):
			return 2, nil
		case rel == "media/vda" || strings.HasPrefix(rel, "media/vda/"):
			return 10, nil
		}
		return devOf(p)
	}
	media := h.env.Deps.Media
	h.env.Deps.Media = func(ctx context.Context, req MediaRequest) (*MediaResult, error) {
		res, err := media(ctx, req)
		if err != nil || len(res.Media) != 1 {
			return res, err
		}
		// The real repository, where a medium would carry it (apks/ARCH/ + .boot_repository).
		apks := filepath.Join(res.Media[0].Mountpoint, "apks")
		os.MkdirAll(apks, 0o755)
		os.WriteFile(filepath.Join(apks, ".boot_repository"), nil, 0o644)
		os.Symlink(filepath.Join(repoDir, "x86_64"), filepath.Join(apks, "x86_64"))
		res.Media[0].Repos = []string{apks}
		return res, nil
	}
	t0 := time.Now()
	res, err := Run(context.Background(), h.env)
	if err != nil {
		t.Fatalf("Run() = %v, want nil", err)
	}
	t.Logf("boot plan with real install: %v, %d packages", time.Since(t0), len(res.Report.Installed))

	// The overlay's world (alpine-base openssl) is merged after pkgs=, alpine-base last.
	want := "busybox-mdev-openrc openssh chrony ca-certificates-bundle no-such-package alpine-base openssl"
	if got := strings.Join(res.Report.World, " "); got != want {
		t.Errorf("world = %q, want %q", got, want)
	}
	// The missing package is named, not silently dropped, and the rest is installed.
	if len(res.Report.Dropped)+len(res.Report.Failed) == 0 || !strings.Contains(strings.Join(append(res.Report.Dropped, res.Report.Failed...), " "), "no-such-package") {
		t.Errorf("dropped/failed = %q/%q, want no-such-package named", res.Report.Dropped, res.Report.Failed)
	}
	// Where the install's time went reaches the report (apkinstall.Timings).
	if tot, commit := res.Report.InstallMS["total"], res.Report.InstallMS["commit"]; tot <= 0 || commit <= 0 || commit > tot {
		t.Errorf("install timings = %v, want total > 0 and 0 < commit <= total", res.Report.InstallMS)
	}
	// The index was loaded during the root and overlay phases and the install used it: the
	// overlay's keys are the initramfs's, so the trusted key set is the same.
	if res.Report.PreloadedRepos != 1 {
		t.Errorf("report preloaded repositories = %d, want 1", res.Report.PreloadedRepos)
	}
	var worldPhase PhaseReport
	for _, p := range res.Report.Phases {
		if p.Name == "world" {
			worldPhase = p
		}
	}
	if worldPhase.Status != "failed" || !strings.Contains(worldPhase.Error, "no-such-package") {
		t.Errorf("world phase = %+v, want failed naming no-such-package", worldPhase)
	}
	if last := h.rec.Lines()[len(h.rec.Lines())-1]; last != "exec /sbin/init" {
		t.Errorf("last action = %q, want exec /sbin/init", last)
	}

	// Real apk judges the root.
	root := "/initramfs/sysroot"
	out, err := exec.Command("chroot", mrf, "/sbin/apk", "--root", root, "info").Output()
	if err != nil {
		t.Fatalf("real apk info: %v\n%s", err, out)
	}
	apkNames := strings.Fields(string(out))
	sort.Strings(apkNames)
	var ours []string
	for _, nv := range res.Report.Installed {
		ours = append(ours, pkgName(nv))
	}
	sort.Strings(ours)
	if diff := cmp.Diff(ours, apkNames); diff != "" {
		t.Errorf("real apk info vs installed (-ours +apk):\n%s", diff)
	}
	// Overlay files win over package files (the overlay's inittab replaces alpine-baselayout's).
	inittab, _ := os.ReadFile(filepath.Join(mrf, root, "etc/inittab"))
	ovlInittab, _ := exec.Command("tar", "-xzOf", filepath.Join(shared, "alpine/apkovl/multipi4-localhost.apkovl.tar.gz"), "./etc/inittab").Output()
	if !strings.HasPrefix(string(inittab), string(ovlInittab)) || len(ovlInittab) == 0 {
		t.Errorf("etc/inittab is not the overlay's (got %d bytes, overlay %d)", len(inittab), len(ovlInittab))
	}
	for _, p := range []string{"sbin/init", "usr/local/sbin/ramboot", "etc/apk/repositories"} {
		if _, err := os.Lstat(filepath.Join(mrf, root, p)); err != nil {
			t.Errorf("new root: %v", err)
		}
	}
}

// pkgName strips "-VERSION-rREL" from "name-version-rN".
func pkgName(nv string) string {
	parts := strings.Split(nv, "-")
	if len(parts) < 3 {
		return nv
	}
	return strings.Join(parts[:len(parts)-2], "-")
}

// TestRescueRootReal installs the rescue busybox from the real 3.19.1 repository.
func TestRescueRootReal(t *testing.T) {
	shared := testdata.Shared(t)
	if os.Geteuid() != 0 {
		t.Skip("prerequisite missing: root (package scripts run chrooted)")
	}
	root := t.TempDir()
	keys, _ := filepath.Glob(filepath.Join(shared, "alpine/keys/*.pub"))
	for _, k := range keys {
		if err := copyFile(k, filepath.Join(root, "etc/apk/keys", filepath.Base(k)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rec := NewRecorder()
	rec.Strip = root
	env := &Env{Root: root, Actions: rec, Arch: "x86_64", Deps: Deps{Install: InstallApk}}
	env.defaults()
	dir, err := rescueRoot(env, []string{filepath.Join(shared, "alpine/v3.19")})
	if err != nil {
		t.Fatalf("rescueRoot() = %v", err)
	}
	if p, argv := findShell(dir); p == "" || argv[0] != "/bin/busybox" {
		t.Errorf("findShell(rescue root) = %q, %q, want busybox", p, argv)
	}
	if _, err := os.Stat(filepath.Join(dir, "lib/ld-musl-x86_64.so.1")); err != nil {
		t.Errorf("rescue root has no musl loader: %v", err)
	}
}
