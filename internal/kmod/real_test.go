package kmod_test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ramboot/ramboot/internal/kmod"
	"github.com/ramboot/ramboot/internal/kmod/kmodtest"
	"github.com/ramboot/ramboot/internal/testdata"
)

func realTree(t *testing.T, arch string) string {
	t.Helper()
	root, err := testdata.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir, why := kmodtest.RealModulesDir(root, arch)
	if dir == "" {
		t.Skipf("prerequisite missing: %s", why)
	}
	return dir
}

// TestRealTree indexes Debian's kernel modules (amd64 and arm64 cloud flavours) and compares the
// result with real depmod's (kmod package) when depmod is installed.
func TestRealTree(t *testing.T) {
	for _, arch := range []string{"x86_64", "aarch64"} {
		t.Run(arch, func(t *testing.T) { testRealTree(t, realTree(t, arch)) })
	}
}

func testRealTree(t *testing.T, dir string) {
	start := time.Now()
	tree, err := kmod.OpenTree(dir)
	if err != nil {
		t.Fatal(err)
	}
	mods, err := tree.All()
	if err != nil {
		t.Fatalf("All() = %v, want nil", err)
	}
	out := t.TempDir()
	if err := kmod.WriteIndex(out, mods); err != nil {
		t.Fatal(err)
	}
	t.Logf("indexed %d modules in %v", len(mods), time.Since(start))
	if err := copyFile(filepath.Join(dir, "modules.builtin"), filepath.Join(out, "modules.builtin")); err != nil {
		t.Fatal(err)
	}
	ix, err := kmod.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	// Chains from the reference notes (qemu-and-libraries.md §2.5), identical for generic and cloud.
	got, err := ix.Resolve("vfat")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"kernel/fs/fat/fat.ko", "kernel/fs/fat/vfat.ko"}; !cmp.Equal(got, want) {
		t.Errorf("Resolve(vfat) = %v, want %v", got, want)
	}
	got, err = ix.Resolve("virtio_blk")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"kernel/drivers/virtio/virtio_ring.ko", "kernel/drivers/virtio/virtio.ko", "kernel/drivers/block/virtio_blk.ko"}; !cmp.Equal(got, want) {
		t.Errorf("Resolve(virtio_blk) = %v, want %v", got, want)
	}
	if m := ix.MatchAlias("virtio:d00000002v00001AF4"); !cmp.Equal(m, []string{"virtio_blk"}) {
		t.Errorf("MatchAlias(virtio blk) = %v, want [virtio_blk]", m)
	}
	if !ix.Has("ext4") {
		t.Errorf("Has(ext4) = false, want true (built into the cloud kernel)")
	}

	depmod, err := exec.LookPath("depmod")
	if err != nil {
		t.Skipf("prerequisite missing: depmod (Debian package kmod) to compare against: %v", err)
	}
	// depmod -n prints modules.dep, then modules.alias, ... without writing into the tree.
	base := t.TempDir()
	rel := filepath.Base(dir)
	os.MkdirAll(filepath.Join(base, "lib", "modules"), 0o755)
	if err := os.Symlink(dir, filepath.Join(base, "lib", "modules", rel)); err != nil {
		t.Fatal(err)
	}
	ref, err := exec.Command(depmod, "-n", "-b", base, rel).Output()
	if err != nil {
		t.Fatalf("depmod -n: %v", err)
	}
	refDep, refAlias := splitDepmod(t, ref)
	ourDep := readLines(t, filepath.Join(out, "modules.dep"))
	ourAlias := readLines(t, filepath.Join(out, "modules.alias"))
	// depmod orders each dependency list by a global topological sort; any order that loads
	// every module after its own dependencies (reading the list backwards) is equally valid, so
	// compare the sets and check that property.
	refMap, ourMap := lineMap(refDep), lineMap(ourDep)
	setOf := func(m map[string]string) map[string][]string {
		out := map[string][]string{}
		for k, v := range m {
			out[k] = sorted(strings.Fields(v))
		}
		return out
	}
	if diff := cmp.Diff(setOf(refMap), setOf(ourMap)); diff != "" {
		t.Errorf("modules.dep dependency sets differ from depmod's (-depmod +ours):\n%s", diff)
	}
	for mod, v := range ourMap {
		list := strings.Fields(v)
		for i, d := range list {
			for _, dd := range strings.Fields(ourMap[d]) {
				if j := indexOf(list, dd); j <= i {
					t.Errorf("modules.dep %s: %s listed at %d, its dependency %s at %d: busybox modprobe would load it first", mod, d, i, dd, j)
				}
			}
		}
	}
	if diff := cmp.Diff(sorted(refAlias), sorted(ourAlias)); diff != "" {
		t.Errorf("modules.alias differs from depmod's (-depmod +ours):\n%s", diff)
	}
}

// TestRealMatchAliasVsModprobe checks MatchAlias against kmod's own matcher (modprobe
// --resolve-alias over a depmod-built index) on concrete modaliases made from the real tree's alias
// patterns ('*' -> "", "0" or "AB12", '?' -> 'Z'), so both must agree on every module matched.
func TestRealMatchAliasVsModprobe(t *testing.T) {
	dir := realTree(t, "x86_64")
	depmod, err1 := exec.LookPath("depmod")
	modprobe, err2 := exec.LookPath("modprobe")
	if err1 != nil || err2 != nil {
		t.Skipf("prerequisite missing: depmod and modprobe (Debian package kmod): %v %v", err1, err2)
	}
	rel := filepath.Base(dir)
	base := t.TempDir()
	mdir := filepath.Join(base, "lib", "modules", rel)
	os.MkdirAll(mdir, 0o755)
	if err := os.Symlink(filepath.Join(dir, "kernel"), filepath.Join(mdir, "kernel")); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"modules.builtin", "modules.order"} {
		copyFile(filepath.Join(dir, f), filepath.Join(mdir, f))
	}
	if out, err := exec.Command(depmod, "-b", base, rel).CombinedOutput(); err != nil {
		t.Fatalf("depmod: %v\n%s", err, out)
	}
	// Our index, built from the same tree, in its own directory.
	ours := t.TempDir()
	tree, err := kmod.OpenTree(dir)
	if err != nil {
		t.Fatal(err)
	}
	mods, err := tree.All()
	if err != nil {
		t.Fatal(err)
	}
	if err := kmod.WriteIndex(ours, mods); err != nil {
		t.Fatal(err)
	}
	ix, err := kmod.Load(ours)
	if err != nil {
		t.Fatal(err)
	}
	patterns := readLines(t, filepath.Join(ours, "modules.alias"))
	checked := 0
	for i := 0; i < len(patterns); i += 23 {
		f := strings.Fields(patterns[i])
		for _, fill := range []string{"", "0", "AB12"} {
			alias := strings.ReplaceAll(strings.ReplaceAll(f[1], "*", fill), "?", "Z")
			if strings.ContainsAny(alias, "[]\\") {
				continue
			}
			out, _ := exec.Command(modprobe, "-d", base, "-S", rel, "-R", alias).Output()
			// modprobe prints a module once per matching alias line; MatchAlias dedupes.
			want := sorted(dedupe(strings.Fields(string(out))))
			got := sorted(ix.MatchAlias(alias))
			if !cmp.Equal(want, got, cmpopts.EquateEmpty()) {
				t.Errorf("MatchAlias(%q) = %v, want %v (modprobe -R)", alias, got, want)
			}
			checked++
		}
	}
	t.Logf("%d modaliases agree with modprobe -R", checked)
	if checked < 100 {
		t.Errorf("only %d modaliases checked, want >= 100", checked)
	}
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

func splitDepmod(t *testing.T, out []byte) (dep, alias []string) {
	t.Helper()
	section := "dep"
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		l := sc.Text()
		switch {
		case l == "# Aliases extracted from modules themselves.":
			section = "alias"
		case strings.HasPrefix(l, "#"):
			section = "other"
		case section == "dep":
			dep = append(dep, l)
		case section == "alias" && l != "":
			alias = append(alias, l)
		}
	}
	if len(dep) == 0 || len(alias) == 0 {
		t.Fatalf("depmod -n output not understood: %d dep lines, %d alias lines", len(dep), len(alias))
	}
	return dep, alias
}

func readLines(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

// lineMap keys modules.dep lines by module: depmod orders lines by modules.order, we by path.
func lineMap(lines []string) map[string]string {
	m := map[string]string{}
	for _, l := range lines {
		k, v, _ := strings.Cut(l, ":")
		m[k] = strings.TrimSpace(v)
	}
	return m
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}
