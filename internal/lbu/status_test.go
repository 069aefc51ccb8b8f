package lbu

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Status and diff report every kind of change since the last commit: content, mode, owner,
// symlink target, type, additions and deletions (Alpine's lbu shows only newer-mtime content).
func TestStatusAndDiffEveryKindOfChange(t *testing.T) {
	root := newRoot(t, "LBU_BACKUPDIR=/media/bk\n")
	os.MkdirAll(filepath.Join(root, "media/bk"), 0755)
	r := func(p string) string { return filepath.Join(root, p) }
	os.WriteFile(r("etc/motd"), []byte("line1\nline2\nline3\n"), 0644)
	os.WriteFile(r("etc/a.conf"), []byte("a\n"), 0644)
	os.WriteFile(r("etc/mode.conf"), []byte("m\n"), 0644)
	os.Symlink("/old/target", r("etc/link"))
	os.WriteFile(r("etc/todelete.conf"), []byte("bye\n"), 0644)
	os.WriteFile(r("etc/type.conf"), []byte("file\n"), 0644)
	commit(t, root, CommitOptions{})
	// Nothing changed yet.
	ds, path, err := Status(context.Background(), options(t, root), "")
	if err != nil || path == "" || len(ds) != 0 {
		t.Fatalf("Status() right after commit = %v, %q, %v; want no changes against the committed overlay", ds, path, err)
	}
	mustRun(t, func() error { return os.WriteFile(r("etc/motd"), []byte("line1\nline2 changed\nline3\n"), 0644) })
	mustRun(t, func() error { return os.Chmod(r("etc/mode.conf"), 0600) })
	mustRun(t, func() error { return os.Chown(r("etc/a.conf"), 5, 5) })
	mustRun(t, func() error { os.Remove(r("etc/link")); return os.Symlink("/new/target", r("etc/link")) })
	mustRun(t, func() error { return os.Remove(r("etc/todelete.conf")) })
	mustRun(t, func() error { os.Remove(r("etc/type.conf")); return os.Symlink("motd", r("etc/type.conf")) })
	mustRun(t, func() error { return os.WriteFile(r("etc/new.conf"), []byte("new\n"), 0644) })
	mustRun(t, func() error { return os.Mkdir(r("etc/newdir"), 0700) })

	ds, _, err = Status(context.Background(), options(t, root), "")
	if err != nil {
		t.Fatalf("Status() error: %v", err)
	}
	var got []string
	for _, d := range ds {
		got = append(got, fmt.Sprintf("%c %s (%s)", d.Reason, d.Path, d.Detail))
	}
	want := []string{
		"M etc/a.conf (owner 0:0 → 5:5)",
		"U etc/link (symlink /old/target → /new/target)",
		"M etc/mode.conf (mode 0644 → 0600)",
		"U etc/motd (content)",
		"A etc/new.conf ()",
		"A etc/newdir/ ()",
		"D etc/todelete.conf ()",
		"U etc/type.conf (file → symlink)",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Status() (-want +got):\n%s", d)
	}

	var out bytes.Buffer
	if err := WriteDiff(context.Background(), options(t, root), "", &out); err != nil {
		t.Fatalf("WriteDiff() error: %v", err)
	}
	for _, w := range []string{
		"diff -ruN a/etc/motd b/etc/motd\n# content\n--- a/etc/motd\n+++ b/etc/motd\n@@ -1,3 +1,3 @@\n line1\n-line2\n+line2 changed\n line3\n",
		"# mode 0644 → 0600\n",
		"# owner 0:0 → 5:5\n",
		"# symlink /old/target → /new/target\n",
		"--- a/etc/todelete.conf\n+++ /dev/null\n@@ -1,1 +0,0 @@\n-bye\n",
		"--- /dev/null\n+++ b/etc/new.conf\n@@ -0,0 +1,1 @@\n+new\n",
		"# new directory mode 0700",
	} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("WriteDiff() output lacks %q; got:\n%s", w, out.String())
		}
	}
}

// Hunks match GNU diff -u (where the edit is unambiguous).
func TestUnifiedDiffMatchesGNUDiff(t *testing.T) {
	diffBin, err := exec.LookPath("diff")
	if err != nil {
		t.Skip("prerequisite missing: diff")
	}
	lines := func(n int, f func(i int) string) string {
		var b strings.Builder
		for i := 1; i <= n; i++ {
			b.WriteString(f(i) + "\n")
		}
		return b.String()
	}
	base := lines(30, func(i int) string { return fmt.Sprintf("line %d", i) })
	tests := []struct{ name, a, b string }{
		{"one change", base, strings.Replace(base, "line 15\n", "line fifteen\n", 1)},
		{"two far hunks", base, strings.Replace(strings.Replace(base, "line 3\n", "three\n", 1), "line 27\n", "", 1)},
		{"two near hunks merge", base, strings.Replace(strings.Replace(base, "line 10\n", "ten\n", 1), "line 14\n", "fourteen\n", 1)},
		{"insert at start", base, "first\n" + base},
		{"append at end", base, base + "last\n"},
		{"from empty", "", "a\nb\n"},
	}
	dir := t.TempDir()
	for _, tc := range tests {
		fa, fb := filepath.Join(dir, "a"), filepath.Join(dir, "b")
		os.WriteFile(fa, []byte(tc.a), 0644)
		os.WriteFile(fb, []byte(tc.b), 0644)
		gnu, _ := exec.Command(diffBin, "-u", fa, fb).Output()
		want := string(gnu)
		if i := strings.Index(want, "@@"); i >= 0 {
			want = want[i:]
		}
		// GNU diff prints ",1" lengths as omitted; normalise ours the same way.
		var b bytes.Buffer
		unifiedDiff(&b, splitLines([]byte(tc.a)), splitLines([]byte(tc.b)))
		if got := gnuStyle(b.String()); got != want {
			t.Errorf("unifiedDiff(%s) =\n%s\nwant (GNU diff -u)\n%s", tc.name, got, want)
		}
	}
}

// gnuStyle drops ",1" hunk lengths like GNU diff does.
func gnuStyle(s string) string {
	var out []string
	for _, l := range strings.SplitAfter(s, "\n") {
		if strings.HasPrefix(l, "@@ ") {
			f := strings.Fields(l)
			for i := 1; i <= 2; i++ {
				f[i] = strings.TrimSuffix(f[i], ",1")
			}
			l = strings.Join(f, " ") + "\n"
		}
		out = append(out, l)
	}
	return strings.Join(out, "")
}
