package solver

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ramboot/ramboot/internal/apkinstall/pkg"
)

// repo builds packages from compact APKINDEX text (synthetic: only for edge cases the real
// repositories lack).
func repo(t *testing.T, text string) []*pkg.Package {
	t.Helper()
	pkgs, err := pkg.ParseIndex(strings.NewReader(strings.TrimSpace(text) + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

func world(t *testing.T, s ...string) []pkg.Dependency {
	t.Helper()
	w, err := ParseWorld(s)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func names(sol *Solution) []string {
	var out []string
	for _, c := range sol.Changes {
		if c.New != nil {
			out = append(out, c.New.String())
		} else {
			out = append(out, "-"+c.Old.String())
		}
	}
	return out
}

const brokenRepo = `
C:Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=
P:a
V:1
I:1
D:b

C:Q1AQAAAAAAAAAAAAAAAAAAAAAAAAA=
P:b
V:1
I:1

C:Q1AgAAAAAAAAAAAAAAAAAAAAAAAAA=
P:needs-missing
V:1
I:1
D:missing
`

// TestBrokenWorldDrops is apk's --force-broken-world (initramfs diskless boot): unsatisfiable
// world entries are dropped and reported, the rest is installed.
func TestBrokenWorldDrops(t *testing.T) {
	req := Request{
		World:       world(t, "a", "needs-missing", "not-in-repo"),
		Repos:       []Repository{{Packages: repo(t, brokenRepo)}},
		BrokenWorld: true,
	}
	sol, err := Solve(req)
	if err != nil {
		t.Fatalf("Solve(BrokenWorld) error %v", err)
	}
	if diff := cmp.Diff([]string{"b-1", "a-1"}, names(sol)); diff != "" {
		t.Errorf("Solve(BrokenWorld) changes (-want +got):\n%s", diff)
	}
	var dropped []string
	for _, d := range sol.Dropped {
		dropped = append(dropped, d.String())
	}
	if diff := cmp.Diff([]string{"needs-missing", "not-in-repo"}, dropped); diff != "" {
		t.Errorf("Solve(BrokenWorld).Dropped (-want +got):\n%s", diff)
	}
	if !strings.Contains(sol.DroppedReport, "not-in-repo (no such package)") {
		t.Errorf("DroppedReport = %q, want it to name not-in-repo", sol.DroppedReport)
	}

	req.BrokenWorld = false
	_, err = Solve(req)
	var serr *Error
	if !errors.As(err, &serr) {
		t.Fatalf("Solve(!BrokenWorld) error = %v, want *Error", err)
	}
	want := `ERROR: unable to select packages:
  not-in-repo (no such package):
    required by: world[not-in-repo]
  missing (no such package):
    required by: needs-missing-1[missing]
`
	if serr.Report != want {
		t.Errorf("Solve(!BrokenWorld) report:\n%s\nwant:\n%s", serr.Report, want)
	}
}

func TestMissingTag(t *testing.T) {
	_, err := Solve(Request{World: world(t, "a@edge"), Repos: []Repository{{Packages: repo(t, brokenRepo)}}})
	if !errors.Is(err, ErrMissingTag) {
		t.Errorf("Solve(a@edge without an @edge repository) error = %v, want ErrMissingTag", err)
	}
}

func TestParseWorldErrors(t *testing.T) {
	for _, s := range []string{"foo=", "foo==", ">=1", "a@t@b=1.0=2"} {
		_, err := ParseWorld([]string{s})
		if err == nil {
			t.Errorf("ParseWorld(%q) succeeded, want error", s)
			continue
		}
		if want := "'" + s + "' is not a valid world dependency"; !strings.HasPrefix(err.Error(), want) {
			t.Errorf("ParseWorld(%q) error = %q, want prefix %q", s, err, want)
		}
	}
}

func TestAddWorld(t *testing.T) {
	got := AddWorld(world(t, "a", "b>1", "c"), world(t, "b<3", "d"))
	var s []string
	for _, d := range got {
		s = append(s, d.String())
	}
	if diff := cmp.Diff([]string{"a", "b<3", "c", "d"}, s); diff != "" {
		t.Errorf("AddWorld (-want +got):\n%s", diff)
	}
}

func TestHumanSize(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "0 B"},
		{2, "2 B"},
		{9999, "9999 B"},
		{10000, "9 KiB"},
		{8 * 1024 * 1024, "8192 KiB"},
		{10000 * 1024, "9.8 MiB"},
		{12345678901, "11.5 GiB"},
	}
	for _, tt := range tests {
		if got := HumanSize(tt.n); got != tt.want {
			t.Errorf("HumanSize(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestChangeLine(t *testing.T) {
	a1 := &pkg.Package{Name: "a", Version: "1"}
	a2 := &pkg.Package{Name: "a", Version: "2"}
	a2b := &pkg.Package{Name: "a", Version: "2"}
	tests := []struct {
		c     Change
		i, n  int
		style Style
		want  string
	}{
		{Change{New: a1}, 1, 25, StyleAPK2, "(1/25) Installing a (1)"},
		{Change{New: a1}, 1, 25, StyleAPK3, "( 1/25) Installing a (1)"},
		{Change{New: a2, NewTag: "testing"}, 2, 2, StyleAPK3, "(2/2) Installing a@testing (2)"},
		{Change{Old: a1}, 1, 1, StyleAPK3, "(1/1) Purging a (1)"},
		{Change{Old: a1, New: a2}, 1, 1, StyleAPK3, "(1/1) Upgrading a (1 -> 2)"},
		{Change{Old: a2, New: a1}, 1, 1, StyleAPK3, "(1/1) Downgrading a (2 -> 1)"},
		{Change{Old: a2, New: a2b}, 1, 1, StyleAPK3, "(1/1) Replacing a (2 -> 2)"},
		{Change{Old: a2, New: a2, Reinstall: true}, 1, 1, StyleAPK3, "(1/1) Reinstalling a (2)"},
		{Change{Old: a2, New: a2, NewTag: "edge"}, 1, 1, StyleAPK3, "(1/1) Updating pinning a@edge (2)"},
	}
	for _, tt := range tests {
		if got := tt.c.Line(tt.i, tt.n, tt.style); got != tt.want {
			t.Errorf("Line(%d, %d) = %q, want %q", tt.i, tt.n, got, tt.want)
		}
	}
	sol := &Solution{InstalledBytes: 9 * 1024 * 1024, InstalledPackages: 25}
	if got, want := sol.OKLine(StyleAPK2, 0), "OK: 9 MiB in 25 packages"; got != want {
		t.Errorf("OKLine(APK2) = %q, want %q", got, want)
	}
	if got, want := sol.OKLine(StyleAPK3, 2), "2 errors; 9216 KiB in 25 packages"; got != want {
		t.Errorf("OKLine(APK3, 2 errors) = %q, want %q", got, want)
	}
}

// TestArchCheck: apk 3 refuses packages built for another architecture.
func TestArchCheck(t *testing.T) {
	r := repo(t, `
C:Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=
P:a
V:1
A:aarch64
I:1
`)
	_, err := Solve(Request{World: world(t, "a"), Repos: []Repository{{Packages: r}}, Arch: []string{"x86_64"}})
	var serr *Error
	if !errors.As(err, &serr) || !strings.Contains(serr.Report, "error: uninstallable") || !strings.Contains(serr.Report, "arch: aarch64") {
		t.Errorf("Solve(aarch64 package on x86_64) error = %v, want an uninstallable/arch report", err)
	}
	if _, err := Solve(Request{World: world(t, "a"), Repos: []Repository{{Packages: r}}}); err != nil {
		t.Errorf("Solve without arch check: %v", err)
	}
}

func TestTooManyTags(t *testing.T) {
	var repos []Repository
	for i := 0; i < 40; i++ {
		repos = append(repos, Repository{Tag: fmt.Sprintf("t%d", i)})
	}
	if _, err := Solve(Request{Repos: repos}); err == nil || !strings.Contains(err.Error(), "repository tags") {
		t.Errorf("Solve(40 tagged repositories) error = %v, want a tag limit error", err)
	}
}

// TestPinningTagOnInstall: a package only in a tagged repository installs when asked for with
// its tag and the change carries the tag for the installed database (s: line).
func TestPinningTagOnInstall(t *testing.T) {
	main := repo(t, `
C:Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=
P:a
V:1
I:1
`)
	edge := repo(t, `
C:Q1AQAAAAAAAAAAAAAAAAAAAAAAAAA=
P:a
V:2
I:1

C:Q1AgAAAAAAAAAAAAAAAAAAAAAAAAA=
P:b
V:1
I:1
`)
	req := Request{World: world(t, "a@edge", "b"), Repos: []Repository{{Packages: main}, {Tag: "edge", Packages: edge}}}
	_, err := Solve(req)
	var serr *Error
	if !errors.As(err, &serr) || !strings.Contains(serr.Report, "masked in: @edge") {
		t.Fatalf("Solve(b from @edge without tag) error = %v, want a masked-in report", err)
	}
	req.World = world(t, "a@edge", "b@edge")
	sol, err := Solve(req)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i, c := range sol.Changes {
		got = append(got, c.Line(i+1, len(sol.Changes), StyleAPK2)+" tag="+c.NewTag)
	}
	want := []string{"(1/2) Installing a@edge (2) tag=edge", "(2/2) Installing b@edge (1) tag=edge"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Solve(a@edge b@edge) (-want +got):\n%s", diff)
	}
}

// TestChecksumConstraint: "name><Q1..." (what apk add ./file.apk writes to world) selects the
// package with exactly that identity, even when it is not the newest.
func TestChecksumConstraint(t *testing.T) {
	r := repo(t, `
C:Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=
P:a
V:1
I:1

C:Q1AQAAAAAAAAAAAAAAAAAAAAAAAAA=
P:a
V:2
I:1
`)
	sol, err := Solve(Request{World: world(t, "a><Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA="), Repos: []Repository{{Packages: r}}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a-1"}, names(sol)); diff != "" {
		t.Errorf("Solve(a><Q1...) (-want +got):\n%s", diff)
	}
}

// TestChangeRepos: a package present in several repositories is one package; the change
// names every repository that offers it.
func TestChangeRepos(t *testing.T) {
	const text = `
C:Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=
P:a
V:1
I:1
`
	other := repo(t, `
C:Q1AQAAAAAAAAAAAAAAAAAAAAAAAAA=
P:b
V:1
I:1
`)
	sol, err := Solve(Request{World: world(t, "a"), Repos: []Repository{{Packages: other}, {Packages: repo(t, text)}, {Packages: repo(t, text)}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(sol.Changes) != 1 {
		t.Fatalf("Solve(a) = %d changes, want 1", len(sol.Changes))
	}
	if diff := cmp.Diff([]int{1, 2}, sol.Changes[0].Repos); diff != "" {
		t.Errorf("Change.Repos (-want +got):\n%s", diff)
	}
}
