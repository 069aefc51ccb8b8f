package solver

import (
	"bytes"
	"errors"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ramboot/ramboot/internal/apkinstall/pkg"
	"github.com/ramboot/ramboot/internal/testdata"
)

// loadAPKINDEX reads the APKINDEX member of an APKINDEX.tar.gz. The signature is not verified
// here: that is the index package's job; this test only needs the records.
func loadAPKINDEX(t testing.TB, path string) []*pkg.Package {
	t.Helper()
	pkgs, err := pkg.ParseIndex(bytes.NewReader(testdata.TarGzMember(t, path, "APKINDEX")))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return pkgs
}

// realCase is one world solved against a real Alpine repository (stored under /REPO/ARCH in the
// minirootfs chroot).
type realCase struct {
	repo, arch string // shared/alpine/<repo>/<arch>
	world      []string
	broken     bool // --force-broken-world, as the initramfs runs apk
}

// realCases are the boot worlds the issue names plus worlds exercising so:/cmd:/versioned/
// conflict syntax and apk's error report, on both real repositories.
var realCases = []realCase{
	{"v3.19", "x86_64", []string{"alpine-base", "busybox-mdev-openrc", "ifupdown-ng", "ca-certificates-bundle"}, false},
	{"v3.19", "x86_64", []string{"alpine-base", "busybox-mdev-openrc", "ifupdown-ng", "ca-certificates-bundle", "openssh", "chrony", "dhcpcd", "e2fsprogs"}, false},
	{"v3.19", "x86_64", []string{"alpine-base", "so:libc.musl-x86_64.so.1", "cmd:ssh", "openssh-server>=9", "dhcpcd~10.0"}, false},
	{"v3.19", "x86_64", []string{"alpine-base", "!openssh-server", "openssh-client-default"}, false},
	{"v3.19", "x86_64", []string{"cmd:sh", "/bin/sh", "so:libcrypto.so.3"}, false},
	{"v3.19", "x86_64", []string{"alpine-base", "wpa_supplicant", "ppp", "ifupdown-ng", "tiny-cloud"}, false},
	{"v3.19", "x86_64", []string{"alpine-base", "nonexistent"}, false},
	{"v3.19", "x86_64", []string{"openssh-server", "!openssh-server-common"}, false},
	{"v3.19", "x86_64", []string{"busybox<1.30"}, false},
	{"v3.13", "aarch64", []string{"alpine-base", "busybox-initscripts", "openssh", "chrony"}, false},
	{"v3.19", "x86_64", []string{"alpine-base", "nonexistent", "openssh"}, true},
	{"v3.19", "x86_64", []string{"alpine-base", "openssh-server", "!openssh-server-common", "chrony"}, true},
	{"v3.19", "x86_64", []string{"alpine-base", "busybox<1.30", "dhcpcd"}, true},
	{"v3.13", "aarch64", []string{"alpine-base", "busybox-initscripts", "nonexistent", "chrony>9"}, true},
}

// solveReal returns what ramboot prints for the case: change lines, or apk's error report.
func solveReal(t *testing.T, c realCase) []string {
	t.Helper()
	repo := loadAPKINDEX(t, testdata.Path(t, "alpine", c.repo, c.arch, "APKINDEX.tar.gz"))
	deps, err := ParseWorld(c.world)
	if err != nil {
		t.Fatal(err)
	}
	// apk add merges its arguments into world one by one: a later entry for a name replaces
	// an earlier one
	sol, err := Solve(Request{World: AddWorld(nil, deps), Repos: []Repository{{Packages: repo}}, Arch: []string{c.arch}, BrokenWorld: c.broken})
	var serr *Error
	if errors.As(err, &serr) {
		return strings.Split(strings.TrimSuffix(serr.Report, "\n"), "\n")
	}
	if err != nil {
		t.Fatalf("Solve(%v): %v", c.world, err)
	}
	var lines []string
	for i, ch := range sol.Changes {
		lines = append(lines, ch.Line(i+1, len(sol.Changes), StyleAPK2))
	}
	return lines
}

// realAPK runs apk-tools 2.14.4 from Alpine's minirootfs (in a chroot) in simulate mode and
// returns its output without the final "OK:" line (a simulation into an empty root reports
// 0 packages there).
func realAPK(t *testing.T, c realCase) []string {
	t.Helper()
	root := minirootfs(t)
	args := []string{root, "/sbin/apk", "add", "--simulate", "--root", "/target", "--no-network",
		"--repository", "/" + c.repo, "--keys-dir", "/keys", "--arch", c.arch}
	if c.broken {
		args = append(args, "--force-broken-world")
	}
	args = append(args, c.world...)
	out, _ := exec.Command("chroot", args...).CombinedOutput()
	var lines []string
	for _, l := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
		if !strings.HasPrefix(l, "OK: ") {
			lines = append(lines, l)
		}
	}
	return lines
}

// The extracted minirootfs is shared by all tests of this binary (extraction takes a while).
var (
	mrfOnce sync.Once
	mrfDir  string
	mrfErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if mrfDir != "" {
		os.RemoveAll(mrfDir)
	}
	os.Exit(code)
}

// minirootfs extracts Alpine's minirootfs (with the real apk) once per test binary, with the
// 3.19 repository at /repo and an initialised empty root at /target.
func minirootfs(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("prerequisite missing: root (chroot into Alpine's minirootfs to run the real apk)")
	}
	if _, err := exec.LookPath("chroot"); err != nil {
		t.Skip("prerequisite missing: chroot(8)")
	}
	mrfOnce.Do(func() { mrfDir, mrfErr = setupMinirootfs(t) })
	if mrfErr != nil {
		t.Fatal(mrfErr)
	}
	return mrfDir
}

func setupMinirootfs(t *testing.T) (string, error) {
	tarballs, _ := filepath.Glob(testdata.Path(t, "alpine", "minirootfs", "alpine-minirootfs-*-x86_64.tar.gz"))
	if len(tarballs) == 0 {
		return "", errors.New("no minirootfs tarball in shared/alpine/minirootfs")
	}
	dir, err := os.MkdirTemp("", "solver-mrf-")
	if err != nil {
		return "", err
	}
	if out, err := exec.Command("tar", "-xzf", tarballs[0], "-C", dir).CombinedOutput(); err != nil {
		return "", errors.New("extract minirootfs: " + err.Error() + ": " + string(out))
	}
	// apk only needs the signed indexes (and all of Alpine's keys) for a simulated solve.
	for _, r := range [][2]string{{"v3.19", "x86_64"}, {"v3.13", "aarch64"}} {
		if err := copyFile(testdata.Path(t, "alpine", r[0], r[1], "APKINDEX.tar.gz"), filepath.Join(dir, r[0], r[1], "APKINDEX.tar.gz")); err != nil {
			return "", err
		}
	}
	keys, _ := filepath.Glob(testdata.Path(t, "alpine", "keys", "*.pub"))
	for _, k := range keys {
		if err := copyFile(k, filepath.Join(dir, "keys", filepath.Base(k))); err != nil {
			return "", err
		}
	}
	// apk 2.14 cannot --simulate into a root without a database: create an empty one first.
	out, err := exec.Command("chroot", dir, "/sbin/apk", "add", "--root", "/target", "--initdb", "--no-network",
		"--keys-dir", "/etc/apk/keys", "--arch", "x86_64").CombinedOutput()
	if err != nil {
		return "", errors.New("apk --initdb: " + err.Error() + ": " + string(out))
	}
	return dir, nil
}

// TestRealRepositoryMatchesAPK solves real Alpine 3.19.1 boot worlds and compares package set and
// install order line by line with the real apk 2.14.4.
func TestRealRepositoryMatchesAPK(t *testing.T) {
	for _, c := range realCases {
		name := c.repo + "/" + strings.Join(c.world, "_")
		if c.broken {
			name += "/force-broken-world"
		}
		t.Run(name, func(t *testing.T) {
			got := solveReal(t, c)
			want := realAPK(t, c)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Solve(%v) output differs from apk 2.14.4 (-apk +ours):\n%s", c.world, diff)
			}
		})
	}
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}

// TestRealRepositoryBaseWorld checks the 25-package base world without needing root.
func TestRealRepositoryBaseWorld(t *testing.T) {
	got := solveReal(t, realCases[0])
	if len(got) != 25 {
		t.Fatalf("Solve(base world) = %d changes, want 25:\n%s", len(got), strings.Join(got, "\n"))
	}
	for i, want := range map[int]string{
		0:  "(1/25) Installing alpine-baselayout-data (3.4.3-r2)",
		1:  "(2/25) Installing musl (1.2.4_git20230717-r4)",
		24: "(25/25) Installing alpine-base (3.19.1-r0)",
	} {
		if got[i] != want {
			t.Errorf("Solve(base world) line %d = %q, want %q", i+1, got[i], want)
		}
	}
}

// TestRealRepositoryOnInstalledRoot installs the base world (as an installed database written by
// pkg.WriteIndexRecord), then adds more packages and pins an upgrade, comparing with the real
// apk run on the same root: it checks that installed packages are kept and only the missing
// ones are installed, in apk's order.
func TestRealRepositoryOnInstalledRoot(t *testing.T) {
	root := minirootfs(t)
	repo := loadAPKINDEX(t, testdata.Path(t, "alpine", "v3.19", "x86_64", "APKINDEX.tar.gz"))
	base := realCases[0].world
	deps, err := ParseWorld(base)
	if err != nil {
		t.Fatal(err)
	}
	sol, err := Solve(Request{World: deps, Repos: []Repository{{Packages: repo}}})
	if err != nil {
		t.Fatal(err)
	}
	var installed []*pkg.Package
	var db strings.Builder
	for _, c := range sol.Changes {
		installed = append(installed, c.New)
		if err := pkg.WriteIndexRecord(&db, c.New); err != nil {
			t.Fatal(err)
		}
		db.WriteString("\n")
	}
	target := filepath.Join(root, "target-installed")
	write := func(path, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(target, filepath.Dir(path)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(target, path), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("lib/apk/db/installed", db.String())
	write("etc/apk/arch", "x86_64\n")
	// The last case drops ca-certificates-bundle from world: apk add then purges it.
	noCA := []string{"alpine-base", "busybox-mdev-openrc", "ifupdown-ng"}
	for _, tc := range []struct{ world, add []string }{
		{base, []string{"openssh", "chrony"}},
		{base, []string{"e2fsprogs", "!chrony", "dhcpcd"}},
		{base, []string{"nonexistent"}},
		{noCA, nil},
		{noCA, []string{"!busybox-mdev-openrc"}},
	} {
		add := tc.add
		t.Run(strings.Join(tc.world, "_")+"+"+strings.Join(add, "_"), func(t *testing.T) {
			write("etc/apk/world", strings.Join(tc.world, "\n")+"\n")
			deps, err := ParseWorld(tc.world)
			if err != nil {
				t.Fatal(err)
			}
			args := append([]string{root, "/sbin/apk", "add", "--simulate", "--root", "/target-installed", "--no-network",
				"--repository", "/v3.19", "--keys-dir", "/keys"}, add...)
			out, _ := exec.Command("chroot", args...).CombinedOutput()
			var want []string
			for _, l := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
				if !strings.HasPrefix(l, "OK: ") {
					want = append(want, l)
				}
			}
			addDeps, err := ParseWorld(add)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			sol, err := Solve(Request{World: AddWorld(deps, addDeps), Repos: []Repository{{Packages: repo}}, Installed: installed})
			var serr *Error
			switch {
			case errors.As(err, &serr):
				got = strings.Split(strings.TrimSuffix(serr.Report, "\n"), "\n")
			case err != nil:
				t.Fatal(err)
			default:
				for i, c := range sol.Changes {
					got = append(got, c.Line(i+1, len(sol.Changes), StyleAPK2))
				}
				n := len(installed)
				for _, c := range sol.Changes {
					if c.Old == nil {
						n++
					} else if c.New == nil {
						n--
					}
				}
				if sol.InstalledPackages != n {
					t.Errorf("InstalledPackages = %d, want %d", sol.InstalledPackages, n)
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Solve(installed base + %v) differs from apk 2.14.4 (-apk +ours):\n%s", add, diff)
			}
		})
	}
}

// TestRandomWorldsMatchAPK is a differential test against the real apk 2.14.4: random worlds
// over both real repositories (package and provided names, conflicts, versioned constraints)
// must give byte-identical change lists or error reports. RAMBOOT_SOLVER_WORLDS raises the count
// per repository (default 60) and RAMBOOT_SOLVER_SEED changes the seed.
func TestRandomWorldsMatchAPK(t *testing.T) {
	count, seed := 60, int64(42)
	if v, err := strconv.Atoi(os.Getenv("RAMBOOT_SOLVER_WORLDS")); err == nil {
		count = v
	}
	if v, err := strconv.ParseInt(os.Getenv("RAMBOOT_SOLVER_SEED"), 10, 64); err == nil {
		seed = v
	}
	minirootfs(t)
	for _, rc := range []struct{ repo, arch string }{{"v3.19", "x86_64"}, {"v3.13", "aarch64"}} {
		repo := loadAPKINDEX(t, testdata.Path(t, "alpine", rc.repo, rc.arch, "APKINDEX.tar.gz"))
		type cand struct{ name, version string }
		var names []cand
		for _, p := range repo {
			names = append(names, cand{p.Name, p.Version})
			for _, d := range p.Provides {
				names = append(names, cand{d.Name, d.Version})
			}
		}
		r := rand.New(rand.NewSource(seed))
		fails := 0
		for i := 0; i < count; i++ {
			var w []string
			for j, k := 0, 1+r.Intn(8); j < k; j++ {
				c := names[r.Intn(len(names))]
				switch x := r.Intn(20); {
				case x == 0:
					w = append(w, "!"+c.name)
				case x == 1 && c.version != "":
					w = append(w, c.name+"<"+c.version)
				case x == 2 && c.version != "":
					w = append(w, c.name+">="+c.version)
				case x == 3 && c.version != "":
					w = append(w, c.name+"~"+strings.SplitN(c.version, ".", 2)[0])
				default:
					w = append(w, c.name)
				}
			}
			c := realCase{rc.repo, rc.arch, w, i%4 == 3}
			if diff := cmp.Diff(realAPK(t, c), solveReal(t, c)); diff != "" {
				fails++
				t.Errorf("%s world %q (force-broken-world %v) differs from apk 2.14.4 (-apk +ours):\n%s", rc.repo, strings.Join(w, " "), c.broken, diff)
			}
		}
		t.Logf("%s: %d random worlds, %d differ from apk 2.14.4", rc.repo, count, fails)
	}
}

// TestRandomAddsOnInstalledRootMatchAPK: a random world is installed (written as the installed
// database), then random entries are added; the change list or error report must equal the
// real apk 2.14.4's for the same root.
func TestRandomAddsOnInstalledRootMatchAPK(t *testing.T) {
	count := 30
	if v, err := strconv.Atoi(os.Getenv("RAMBOOT_SOLVER_WORLDS")); err == nil {
		count = v / 2
	}
	root := minirootfs(t)
	repo := loadAPKINDEX(t, testdata.Path(t, "alpine", "v3.19", "x86_64", "APKINDEX.tar.gz"))
	var names []string
	for _, p := range repo {
		names = append(names, p.Name)
		for _, d := range p.Provides {
			names = append(names, d.Name)
		}
	}
	pick := func(r *rand.Rand, n int) []string {
		var w []string
		for j := 0; j < n; j++ {
			c := names[r.Intn(len(names))]
			if r.Intn(12) == 0 {
				c = "!" + c
			}
			w = append(w, c)
		}
		return w
	}
	target := filepath.Join(root, "target-random")
	r := rand.New(rand.NewSource(1))
	tried, changed, failed := 0, 0, 0
	for i := 0; tried < count && i < 10*count; i++ {
		base := pick(r, 1+r.Intn(6))
		baseDeps := AddWorld(nil, mustWorld(t, base))
		sol, err := Solve(Request{World: baseDeps, Repos: []Repository{{Packages: repo}}})
		if err != nil {
			continue // only satisfiable worlds can be installed
		}
		tried++
		var installed []*pkg.Package
		var db strings.Builder
		for _, c := range sol.Changes {
			installed = append(installed, c.New)
			if err := pkg.WriteIndexRecord(&db, c.New); err != nil {
				t.Fatal(err)
			}
			db.WriteString("\n")
		}
		var world []string
		for _, d := range baseDeps {
			world = append(world, d.String())
		}
		for path, content := range map[string]string{
			"lib/apk/db/installed": db.String(),
			"etc/apk/world":        strings.Join(world, "\n") + "\n",
			"etc/apk/arch":         "x86_64\n",
		} {
			if err := os.MkdirAll(filepath.Join(target, filepath.Dir(path)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(target, path), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		add := pick(r, r.Intn(4))
		args := append([]string{root, "/sbin/apk", "add", "--simulate", "--root", "/target-random", "--no-network",
			"--repository", "/v3.19", "--keys-dir", "/keys"}, add...)
		out, _ := exec.Command("chroot", args...).CombinedOutput()
		var want []string
		for _, l := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
			if !strings.HasPrefix(l, "OK: ") {
				want = append(want, l)
			}
		}
		var got []string
		sol2, err := Solve(Request{World: AddWorld(baseDeps, mustWorld(t, add)), Repos: []Repository{{Packages: repo}}, Installed: installed})
		var serr *Error
		switch {
		case errors.As(err, &serr):
			got = strings.Split(strings.TrimSuffix(serr.Report, "\n"), "\n")
		case err != nil:
			t.Fatal(err)
		default:
			for i, c := range sol2.Changes {
				got = append(got, c.Line(i+1, len(sol2.Changes), StyleAPK2))
			}
		}
		if len(got) == 0 {
			got = nil
		}
		if len(want) == 1 && want[0] == "" {
			want = nil
		}
		if len(want) > 0 && strings.HasPrefix(want[0], "(") {
			changed++
		} else if len(want) > 0 {
			failed++
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("installed %q, add %q: differs from apk 2.14.4 (-apk +ours):\n%s", strings.Join(world, " "), strings.Join(add, " "), diff)
		}
	}
	t.Logf("%d installed roots: %d with changes, %d unsatisfiable additions", tried, changed, failed)
	if tried < count {
		t.Errorf("only %d satisfiable base worlds found, want %d", tried, count)
	}
}

func mustWorld(t *testing.T, s []string) []pkg.Dependency {
	t.Helper()
	w, err := ParseWorld(s)
	if err != nil {
		t.Fatal(err)
	}
	return w
}
