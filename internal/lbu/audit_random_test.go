package lbu

import (
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ramboot/ramboot/internal/testdata"
)

// Random edits to a root with a real package set (alpine-base, openssh, chrony, ca-certificates,
// installed by the real apk), judged after every round by the real apk audit.
func TestAuditRandomEditsMatchRealApk(t *testing.T) {
	for _, seed := range seeds {
		testAuditRandom(t, seed)
	}
}

var seeds = []uint64{1, 2, 3} // seeds 1–16 were all run once against the real apk

func testAuditRandom(t *testing.T, seed uint64) {
	root := minirootfs(t)
	repo := testdata.Path(t, "alpine", "v3.19", "x86_64")
	os.MkdirAll(filepath.Join(root, "repo"), 0755)
	if b, err := exec.Command("cp", "-r", repo, filepath.Join(root, "repo")).CombinedOutput(); err != nil {
		t.Fatalf("copy repo: %v: %s", err, b)
	}
	if b, err := exec.Command("chroot", root, "/sbin/apk", "add", "--quiet", "--no-network", "--repository", "/repo",
		"--keys-dir", "/etc/apk/keys", "alpine-base", "openssh", "chrony", "ca-certificates-bundle", "tzdata").CombinedOutput(); err != nil {
		t.Fatalf("real apk add: %v: %s", err, b)
	}
	os.RemoveAll(filepath.Join(root, "repo"))
	os.MkdirAll(filepath.Join(root, "etc/apk/protected_paths.d"), 0755)
	os.WriteFile(filepath.Join(root, "etc/apk/protected_paths.d/lbu.list"), []byte("+usr/share/zoneinfo/Europe\n-etc/ssh/*_key\n+root\n"), 0644)

	rng := rand.New(rand.NewPCG(seed, 2))
	var candidates []string // existing paths under etc, usr/share/zoneinfo/Europe, root
	for _, top := range []string{"etc", "usr/share/zoneinfo/Europe", "root"} {
		filepath.WalkDir(filepath.Join(root, top), func(p string, d fs.DirEntry, err error) error {
			rel, _ := filepath.Rel(root, p)
			if rel == "etc/apk" {
				return filepath.SkipDir // the judge (real apk) needs its own configuration intact
			}
			if err == nil && p != filepath.Join(root, top) {
				candidates = append(candidates, rel)
			}
			return nil
		})
	}
	sort.Strings(candidates)
	edits := []func(p string) string{
		func(p string) string {
			os.WriteFile(filepath.Join(root, p), []byte("edited\n"), 0644)
			return "write " + p
		},
		func(p string) string { os.Chmod(filepath.Join(root, p), 0600); return "chmod " + p },
		func(p string) string { os.Lchown(filepath.Join(root, p), 1000, 1000); return "chown " + p },
		func(p string) string { os.RemoveAll(filepath.Join(root, p)); return "remove " + p },
		func(p string) string {
			n := filepath.Join(root, filepath.Dir(p), fmt.Sprintf("new%d", rng.IntN(1000)))
			os.WriteFile(n, []byte("n"), 0644)
			return "create " + n
		},
		func(p string) string {
			os.RemoveAll(filepath.Join(root, p))
			os.Symlink("/elsewhere", filepath.Join(root, p))
			return "symlink " + p
		},
	}
	rules := func() []Rule {
		r, err := LoadRules(root)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for round := 0; round < 4; round++ {
		var log []string
		for i := 0; i < 12; i++ {
			p := candidates[rng.IntN(len(candidates))]
			if _, err := os.Lstat(filepath.Join(root, p)); err != nil {
				continue
			}
			log = append(log, edits[rng.IntN(len(edits))](p))
		}
		want := realAudit(t, root)
		changes, err := Audit(root, rules())
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, c := range changes {
			if c.Reason != 'X' {
				got = append(got, c.Path)
			}
		}
		sort.Strings(got)
		if d := cmp.Diff(want, got); d != "" {
			t.Fatalf("round %d after %q: Audit() differs from real apk audit (-apk +ours):\n%s", round, log, d)
		}
		t.Logf("round %d: %d edits, %d changed paths, same as real apk audit", round, len(log), len(got))
	}
}
