package lbu

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ramboot/ramboot/internal/testdata"
)

// minirootfs is a root with a real installed database and the real apk.
func minirootfs(t *testing.T) string { return testdata.Minirootfs(t) }

// realAudit runs the real apk (2.14, from the minirootfs) the way lbu does.
func realAudit(t *testing.T, root string) []string {
	t.Helper()
	cmd := exec.Command("chroot", root, "/sbin/apk", "audit", "--backup", "--quiet", "--recursive", "--check-permissions")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("real apk audit: %v: %s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	sort.Strings(lines)
	return lines
}

func mustRun(t *testing.T, f func() error) {
	t.Helper()
	if err := f(); err != nil {
		t.Fatal(err)
	}
}

// Every kind of change, judged by the real apk audit on the same root.
func TestAuditMatchesRealApk(t *testing.T) {
	root := minirootfs(t)
	r := func(p string) string { return filepath.Join(root, p) }
	mods := []struct {
		what string
		do   func() error
	}{
		{"content change", func() error { return os.WriteFile(r("etc/motd"), []byte("changed\n"), 0644) }},
		{"mode change", func() error { return os.Chmod(r("etc/profile"), 0600) }},
		{"owner change", func() error { return os.Chown(r("etc/fstab"), 5, 0) }},
		{"symlink retarget", func() error { os.Remove(r("etc/mtab")); return os.Symlink("/proc/self/mounts", r("etc/mtab")) }},
		{"new file", func() error { return os.WriteFile(r("etc/new.conf"), []byte("x"), 0644) }},
		{"new dir tree", func() error {
			os.MkdirAll(r("etc/app/sub"), 0750)
			return os.WriteFile(r("etc/app/sub/f"), []byte("y"), 0600)
		}},
		{"empty new dir", func() error { return os.Mkdir(r("etc/emptydir"), 0700) }},
		{"dir mode", func() error { return os.Chmod(r("etc/conf.d"), 0700) }},
		{"dir owner", func() error { return os.Chown(r("etc/network"), 3, 3) }},
		{"init.d symlink", func() error { return os.Symlink("/etc/init.d/foo", r("etc/init.d/bar")) }},
		{"init.d script (not saved)", func() error { return os.WriteFile(r("etc/init.d/myscript"), []byte("#!/bin/sh\n"), 0755) }},
		{"apk-new (skipped)", func() error { return os.WriteFile(r("etc/motd.apk-new"), []byte("x"), 0644) }},
		{"deleted package file", func() error { return os.Remove(r("etc/shells")) }},
		{"outside etc (not saved)", func() error { return os.WriteFile(r("usr/local/x"), []byte("x"), 0644) }},
		{"lbu include", func() error {
			os.MkdirAll(r("etc/apk/protected_paths.d"), 0755)
			os.MkdirAll(r("root/.ssh"), 0700)
			os.WriteFile(r("root/.ssh/authorized_keys"), []byte("ssh-ed25519 AAAA"), 0600)
			os.MkdirAll(r("home/alice"), 0755)
			os.WriteFile(r("home/alice/.profile"), []byte("x"), 0644)
			os.WriteFile(r("home/alice/skip.tmp"), []byte("x"), 0644)
			os.MkdirAll(r("var/lib/thing"), 0755)
			os.WriteFile(r("var/lib/thing/state"), []byte("s"), 0644)
			return os.WriteFile(r("etc/apk/protected_paths.d/lbu.list"), []byte("+root/.ssh\n+home\n-home/*/*.tmp\n+var/lib/thing/state\n-etc/new.conf\n"), 0644)
		}},
	}
	for _, m := range mods {
		if err := m.do(); err != nil {
			t.Fatalf("%s: %v", m.what, err)
		}
	}
	want := realAudit(t, root)
	rules, err := LoadRules(root)
	if err != nil {
		t.Fatal(err)
	}
	changes, err := Audit(root, rules)
	if err != nil {
		t.Fatalf("Audit() error: %v", err)
	}
	var got []string
	var deleted []string
	for _, c := range changes {
		if c.Reason == 'X' {
			deleted = append(deleted, c.Path)
			continue
		}
		got = append(got, c.Path)
	}
	sort.Strings(got)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Audit() paths differ from real apk audit (-apk +ours):\n%s", d)
	}
	if d := cmp.Diff([]string{"etc/shells"}, deleted); d != "" {
		t.Errorf("Audit() deletions (-want +got):\n%s", d)
	}
	// The reason letters for the kinds apk distinguishes.
	wantReason := map[string]byte{
		"etc/motd": 'U', "etc/profile": 'M', "etc/fstab": 'M', "etc/mtab": 'U', "etc/app/": 'd',
		"etc/conf.d/": 'm', "etc/network/": 'm', "etc/init.d/bar": 'A', "root/.ssh/authorized_keys": 'A',
		"etc/apk/world": 'A',
	}
	for _, c := range changes {
		if w, ok := wantReason[c.Path]; ok && c.Reason != w {
			t.Errorf("Audit() %s reason = %c, want %c", c.Path, c.Reason, w)
		}
		delete(wantReason, c.Path)
	}
	if len(wantReason) != 0 {
		t.Errorf("Audit() missed %v", wantReason)
	}
}
