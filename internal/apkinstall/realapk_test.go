package apkinstall_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ramboot/ramboot/internal/apkinstall"
	"github.com/ramboot/ramboot/internal/apkinstall/apktest"
	"github.com/ramboot/ramboot/internal/apkinstall/db"
	"github.com/ramboot/ramboot/internal/testdata"
)

// minirootfs extracts Alpine's minirootfs (with the real apk 2.14.4) into a temp dir and copies
// the 3.19 repository into it at /repo. It skips only without root (chroot needs it) or data.
func minirootfs(t *testing.T) string {
	t.Helper()
	dir := testdata.Minirootfs(t)
	for dst, src := range map[string]string{"repo": "v3.19", "repo13": "v3.13", "keys-all": "keys"} {
		if src != "keys" {
			src = filepath.Join("alpine", src)
		} else {
			src = filepath.Join("alpine", "keys")
		}
		if err := os.CopyFS(filepath.Join(dir, dst), os.DirFS(testdata.Path(t, src))); err != nil {
			t.Fatalf("copy %s: %v", src, err)
		}
	}
	return dir
}

// realApk runs the minirootfs' apk chrooted, returning stdout and stderr.
func realApk(t *testing.T, mrf string, args ...string) (string, string, error) {
	t.Helper()
	return testdata.RealApk(t, mrf, args...)
}

// node is what the comparison looks at for one path.
type node struct {
	Type     string
	Mode     string
	UID, GID uint32
	Hash     string // regular files
	Link     string // symlinks
	Dev      uint64
}

func walkTree(t *testing.T, root string, skip map[string]bool) map[string]node {
	t.Helper()
	out := map[string]node{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if skip[rel] {
			return nil
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			return err
		}
		n := node{Mode: fmt.Sprintf("%04o", st.Mode&0o7777), UID: st.Uid, GID: st.Gid}
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFDIR:
			n.Type = "dir"
		case syscall.S_IFREG:
			n.Type = "file"
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			s := sha256.Sum256(b)
			n.Hash = hex.EncodeToString(s[:])
		case syscall.S_IFLNK:
			n.Type = "symlink"
			n.Mode = ""
			if n.Link, err = os.Readlink(p); err != nil {
				return err
			}
		case syscall.S_IFCHR, syscall.S_IFBLK:
			n.Type = "dev"
			n.Dev = st.Rdev
		default:
			n.Type = fmt.Sprintf("mode %o", st.Mode&syscall.S_IFMT)
		}
		out[rel] = n
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	return out
}

// withoutReplaces drops r: lines: apk 2.14 records a package's replaces on the wrong record in
// some install orders (alpine-base's replaces=alpine-baselayout shows up on alpine-baselayout);
// ramboot records each package's own .PKGINFO replaces.
func withoutReplaces(b []byte) string {
	var keep []string
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, "r:") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

func TestSameTreeAsRealApk(t *testing.T) {
	mrf := minirootfs(t)
	keys := testdata.Path(t, "alpine", "keys")
	tests := []struct {
		name      string
		world     []string
		extra     string // a package real apk then adds on top of ramboot's root
		repo      string // inside the minirootfs
		arch      string
		noScripts bool // foreign-architecture scripts cannot run here
	}{
		{"base", baseWorld, "libuuid", "/repo", "x86_64", false},
		{"big", bigWorld, "yaml", "/repo", "x86_64", false},
		{"v3.13-aarch64", []string{"alpine-base"}, "libuuid", "/repo13", "aarch64", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			refRoot, ourRoot := "/ref-"+tc.name, "/ours-"+tc.name
			args := []string{"add", "--root", refRoot, "--initdb", "--no-network", "--repository", tc.repo,
				"--keys-dir", "/keys-all", "--arch", tc.arch}
			if tc.noScripts {
				args = append(args, "--no-scripts")
			}
			args = append(args, tc.world...)
			refOut, refErr, err := realApk(t, mrf, args...)
			if err != nil {
				t.Fatalf("real apk: %v\n%s%s", err, refOut, refErr)
			}
			var out bytes.Buffer
			res, err := apkinstall.Add(context.Background(), apkinstall.Options{
				Root: filepath.Join(mrf, ourRoot), Repos: []apkinstall.Repo{{Path: filepath.Join(mrf, tc.repo)}},
				KeysDir: keys, Arch: tc.arch, InitDB: true, NoScripts: tc.noScripts, Out: &out,
			}, tc.world)
			if err != nil {
				t.Fatalf("Add() error: %v\n%s", err, out.String())
			}
			if diff := cmp.Diff(refOut, out.String()); diff != "" {
				t.Errorf("Add() output differs from real apk (-apk +ramboot):\n%s", diff)
			}
			if len(res.Installed) == 0 || len(res.Failed) != 0 {
				t.Errorf("Add() = %+v, want installs and no failures", res)
			}
			skip := map[string]bool{db.InstalledPath: true, db.LockPath: true}
			ref := walkTree(t, filepath.Join(mrf, refRoot), skip)
			ours := walkTree(t, filepath.Join(mrf, ourRoot), skip)
			if diff := cmp.Diff(ref, ours); diff != "" {
				t.Errorf("tree differs from real apk's (-apk +ramboot):\n%s", diff)
			}
			if len(ours) < 400 {
				t.Errorf("tree has %d paths, want a full system", len(ours))
			}
			refDB, err := os.ReadFile(filepath.Join(mrf, refRoot, db.InstalledPath))
			if err != nil {
				t.Fatal(err)
			}
			ourDB, err := os.ReadFile(filepath.Join(mrf, ourRoot, db.InstalledPath))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(withoutReplaces(refDB), withoutReplaces(ourDB)); diff != "" {
				t.Errorf("lib/apk/db/installed differs beyond r: lines (-apk +ramboot):\n%s", diff)
			}

			// The real apk accepts ramboot's root.
			refInfo, _, err := realApk(t, mrf, "--root", refRoot, "info")
			if err != nil {
				t.Fatal(err)
			}
			ourInfo, stderr, err := realApk(t, mrf, "--root", ourRoot, "info")
			if err != nil || stderr != "" {
				t.Fatalf("apk info on ramboot's root: %v %s", err, stderr)
			}
			if got, want := sortedLines(ourInfo), sortedLines(refInfo); !cmp.Equal(got, want) {
				t.Errorf("apk info = %v, want %v", got, want)
			}
			audit, stderr, err := realApk(t, mrf, "--root", ourRoot, "audit", "/bin", "/sbin", "/usr", "/lib")
			if err != nil || audit != "" || stderr != "" {
				t.Errorf("apk audit on ramboot's root = %q, %q, %v; want nothing", audit, stderr, err)
			}
			extra := tc.extra
			addArgs := []string{"--root", ourRoot, "add", "--no-network", "--repository", tc.repo, "--keys-dir", "/keys-all", extra}
			if tc.noScripts {
				addArgs = append(addArgs, "--no-scripts")
			}
			addOut, stderr, err := realApk(t, mrf, addArgs...)
			if err != nil || !strings.Contains(addOut, "Installing "+extra) {
				t.Errorf("apk add %s on ramboot's root: %v\n%s%s", extra, err, addOut, stderr)
			}
		})
	}
}

func sortedLines(s string) []string {
	l := strings.Fields(s)
	sort.Strings(l)
	return l
}

// Files already in the root (not from an overlay) are handled like apk: protected ones that
// differ get the package's copy as .apk-new, identical ones are left alone, others replaced.
func TestPreexistingFilesLikeRealApk(t *testing.T) {
	mrf := minirootfs(t)
	world := []string{"alpine-baselayout", "ifupdown-ng"}
	seed := func(root string) {
		for p, c := range map[string]string{
			"etc/motd": "mine\n", "etc/hosts": "127.0.0.1 localhost\n", "etc/init.d/networking": "mine\n",
			"usr/share/udhcpc/default.script": "mine\n",
		} {
			apktest.Must(t, os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755))
			apktest.Must(t, os.WriteFile(filepath.Join(root, p), []byte(c), 0o644))
		}
		fstab, err := os.ReadFile(filepath.Join(mrf, "etc/fstab"))
		apktest.Must(t, err)
		apktest.Must(t, os.WriteFile(filepath.Join(root, "etc/fstab"), fstab, 0o644))
	}
	seed(filepath.Join(mrf, "ref"))
	seed(filepath.Join(mrf, "ours"))
	args := append([]string{"add", "-q", "--root", "/ref", "--initdb", "--no-network", "--repository", "/repo",
		"--keys-dir", "/etc/apk/keys", "--arch", "x86_64", "--no-scripts"}, world...)
	if out, stderr, err := realApk(t, mrf, args...); err != nil {
		t.Fatalf("real apk: %v\n%s%s", err, out, stderr)
	}
	var out bytes.Buffer
	_, err := apkinstall.Add(context.Background(), apkinstall.Options{
		Root: filepath.Join(mrf, "ours"), Repos: []apkinstall.Repo{{Path: filepath.Join(mrf, "repo")}},
		KeysDir: testdata.Path(t, "alpine", "keys"), Arch: "x86_64", InitDB: true, NoScripts: true, Out: &out,
	}, world)
	if err != nil {
		t.Fatalf("Add() error: %v\n%s", err, out.String())
	}
	skip := map[string]bool{db.InstalledPath: true, db.LockPath: true}
	ref := walkTree(t, filepath.Join(mrf, "ref"), skip)
	ours := walkTree(t, filepath.Join(mrf, "ours"), skip)
	if diff := cmp.Diff(ref, ours); diff != "" {
		t.Errorf("tree differs from real apk's (-apk +ramboot):\n%s", diff)
	}
	if _, ok := ours["etc/motd.apk-new"]; !ok {
		t.Errorf("etc/motd.apk-new missing")
	}
}

// A package whose post-install fails: apk reports it naming the package, records the package
// as installed with a broken script (f:s), goes on, and exits non-zero. Judged against real apk
// on the same (re-signed) repository.
func TestFailingScriptLikeRealApk(t *testing.T) {
	mrf := minirootfs(t)
	_, _, files := realFiles(t)
	bad, badID := apktest.Rebuild(t, files[victim], func(e []apktest.Entry) []apktest.Entry {
		return apktest.WithScript(e, ".post-install", []byte("#!/bin/sh\necho failing on purpose\nexit 3\n"))
	}, nil, false)
	key := apktest.NewKey(t, "test-1.rsa.pub")
	f := makeFixture(t, key, key, bad, badID, nil)
	apktest.Must(t, os.CopyFS(filepath.Join(mrf, "fixture"), os.DirFS(f.repo)))
	key.WritePub(t, filepath.Join(mrf, "etc/apk/keys"))

	refOut, refErr, err := realApk(t, mrf, append([]string{"add", "--root", "/ref", "--initdb", "--no-network",
		"--repository", "/fixture", "--keys-dir", "/etc/apk/keys", "--arch", "x86_64"}, fixtureWorld...)...)
	if err == nil {
		t.Fatalf("real apk succeeded despite the failing script:\n%s", refOut)
	}
	var out bytes.Buffer
	res, err := apkinstall.Add(context.Background(), apkinstall.Options{
		Root: filepath.Join(mrf, "ours"), Repos: []apkinstall.Repo{{Path: filepath.Join(mrf, "fixture")}},
		KeysDir: filepath.Join(mrf, "etc/apk/keys"), Arch: "x86_64", InitDB: true, Out: &out,
	}, fixtureWorld)
	if !errors.Is(err, apkinstall.ErrIncomplete) || res.Errors != 1 {
		t.Fatalf("Add() = %+v, %v; want one error and ErrIncomplete", res, err)
	}
	// apk writes ERROR lines to stderr, the rest to stdout; compare each stream's lines.
	var ourOut, ourErr []string
	for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		if strings.HasPrefix(l, "ERROR: ") {
			ourErr = append(ourErr, l)
		} else {
			ourOut = append(ourOut, l)
		}
	}
	if diff := cmp.Diff(strings.Split(strings.TrimSuffix(refOut, "\n"), "\n"), ourOut); diff != "" {
		t.Errorf("output differs from real apk (-apk +ramboot):\n%s", diff)
	}
	if diff := cmp.Diff(strings.Split(strings.TrimSuffix(refErr, "\n"), "\n"), ourErr); diff != "" {
		t.Errorf("errors differ from real apk (-apk +ramboot):\n%s", diff)
	}
	refDB, _ := os.ReadFile(filepath.Join(mrf, "ref", db.InstalledPath))
	ourDB, _ := os.ReadFile(filepath.Join(mrf, "ours", db.InstalledPath))
	if diff := cmp.Diff(withoutReplaces(refDB), withoutReplaces(ourDB)); diff != "" {
		t.Errorf("installed db differs (-apk +ramboot):\n%s", diff)
	}
	if !strings.Contains(string(ourDB), "\nf:s\n") {
		t.Errorf("installed db lacks f:s for the broken script")
	}
}

// An upgrade, then a purge, on top of an existing root (host CLI use): the old version's files
// that the new one lacks disappear, the purged package's files go, the database follows. Judged
// against real apk doing the same steps.
func TestUpgradeLikeRealApk(t *testing.T) {
	mrf := minirootfs(t)
	text, recs, files := realFiles(t)
	zr := recs["zlib"]
	oldRaw, oldID := apktest.Rebuild(t, files["zlib"], func(e []apktest.Entry) []apktest.Entry {
		for i := range e {
			if e[i].Hdr.Name == ".PKGINFO" {
				e[i].Data = bytes.Replace(e[i].Data, []byte("pkgver = 1.3.1-r0"), []byte("pkgver = 1.3.0-r0"), 1)
			}
		}
		return e
	}, addEntries(reg("lib/zlib-old-only", "old\n")), true)
	// The old version's index record: the real one with V: and C: changed.
	start := bytes.Index(text, []byte("C:"+zr.Checksum+"\n"))
	end := start + bytes.Index(text[start:], []byte("\n\n")) + 2
	oldRec := bytes.Replace(text[start:end], []byte("V:1.3.1-r0"), []byte("V:1.3.0-r0"), 1)
	oldRec = bytes.Replace(oldRec, []byte("C:"+zr.Checksum), []byte("C:"+apktest.Q1(oldID)), 1)
	key := apktest.NewKey(t, "test-1.rsa.pub")
	repo := filepath.Join(mrf, "uprepo", "x86_64")
	apktest.Must(t, os.MkdirAll(repo, 0o755))
	apktest.Must(t, os.WriteFile(filepath.Join(repo, "APKINDEX.tar.gz"), apktest.SignedIndex(t, key, append(append([]byte{}, text...), oldRec...)), 0o644))
	for n, b := range files {
		apktest.Must(t, os.WriteFile(filepath.Join(repo, n+"-"+recs[n].Version+".apk"), b, 0o644))
	}
	apktest.Must(t, os.WriteFile(filepath.Join(repo, "zlib-1.3.0-r0.apk"), oldRaw, 0o644))
	key.WritePub(t, filepath.Join(mrf, "etc/apk/keys"))

	steps := []struct {
		world []string
		want  string // the change line
	}{
		{[]string{"zlib=1.3.0-r0"}, "(2/2) Installing zlib (1.3.0-r0)"},
		{[]string{"zlib>=1.3.1"}, "(1/1) Upgrading zlib (1.3.0-r0 -> 1.3.1-r0)"},
		{[]string{"busybox", "!zlib"}, "(1/2) Purging zlib (1.3.1-r0)"},
	}
	for i, st := range steps {
		args := []string{"add", "--root", "/ref", "--no-network", "--repository", "/uprepo", "--keys-dir", "/etc/apk/keys", "--no-scripts"}
		if i == 0 {
			args = append(args, "--initdb", "--arch", "x86_64")
		}
		refOut, refErr, err := realApk(t, mrf, append(args, st.world...)...)
		if err != nil {
			t.Fatalf("real apk step %d: %v\n%s%s", i, err, refOut, refErr)
		}
		var out bytes.Buffer
		_, err = apkinstall.Add(context.Background(), apkinstall.Options{
			Root: filepath.Join(mrf, "ours"), Repos: []apkinstall.Repo{{Path: filepath.Join(mrf, "uprepo")}},
			KeysDir: filepath.Join(mrf, "etc/apk/keys"), Arch: "x86_64", InitDB: i == 0, NoScripts: true, Out: &out,
		}, st.world)
		if err != nil {
			t.Fatalf("Add() step %d error: %v\n%s", i, err, out.String())
		}
		if diff := cmp.Diff(refOut, out.String()); diff != "" {
			t.Errorf("step %d output differs (-apk +ramboot):\n%s", i, diff)
		}
		if !strings.Contains(out.String(), st.want+"\n") {
			t.Errorf("step %d output lacks %q:\n%s", i, st.want, out.String())
		}
	}
	skip := map[string]bool{db.InstalledPath: true, db.LockPath: true}
	ref := walkTree(t, filepath.Join(mrf, "ref"), skip)
	ours := walkTree(t, filepath.Join(mrf, "ours"), skip)
	if diff := cmp.Diff(ref, ours); diff != "" {
		t.Errorf("tree after the upgrade differs from real apk's (-apk +ramboot):\n%s", diff)
	}
	if _, ok := ours["lib/libz.so.1"]; ok {
		t.Errorf("lib/libz.so.1 survived the purge")
	}
	refDB, _ := os.ReadFile(filepath.Join(mrf, "ref", db.InstalledPath))
	ourDB, _ := os.ReadFile(filepath.Join(mrf, "ours", db.InstalledPath))
	if diff := cmp.Diff(withoutReplaces(refDB), withoutReplaces(ourDB)); diff != "" {
		t.Errorf("installed db after the upgrade differs (-apk +ramboot):\n%s", diff)
	}
}
