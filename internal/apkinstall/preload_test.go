package apkinstall_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ramboot/ramboot/internal/apkinstall"
	"github.com/ramboot/ramboot/internal/apkinstall/apktest"
	"github.com/ramboot/ramboot/internal/apkinstall/db"
	"github.com/ramboot/ramboot/internal/testdata"
)

// linkedRepo makes a repository directory whose x86_64/ entries link to the real 3.19.1 ones,
// so a test may rename its index away without touching the shared data.
func linkedRepo(t *testing.T) (repo, index string) {
	t.Helper()
	src := testdata.Path(t, "alpine", "v3.19", "x86_64")
	repo = filepath.Join(t.TempDir(), "repo")
	dst := filepath.Join(repo, "x86_64")
	apktest.Must(t, os.MkdirAll(dst, 0o755))
	ents, err := os.ReadDir(src)
	apktest.Must(t, err)
	for _, e := range ents {
		apktest.Must(t, os.Symlink(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())))
	}
	return repo, filepath.Join(dst, "APKINDEX.tar.gz")
}

// copyKeys copies the real Alpine keys into a fresh directory.
func copyKeys(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "keys")
	apktest.Must(t, os.MkdirAll(dir, 0o755))
	ents, err := os.ReadDir(testdata.Path(t, "alpine", "keys"))
	apktest.Must(t, err)
	for _, e := range ents {
		b, err := os.ReadFile(testdata.Path(t, "alpine", "keys", e.Name()))
		apktest.Must(t, err)
		apktest.Must(t, os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644))
	}
	return dir
}

// TestAddPreloaded installs from preloaded indexes whose files are gone by then: the result and
// the database match a normal install, so Add used the preloaded records and read no index.
func TestAddPreloaded(t *testing.T) {
	repo, idx := linkedRepo(t)
	keys := copyKeys(t)
	world := []string{"busybox", "alpine-baselayout"}
	opts := func(root string, out *bytes.Buffer) apkinstall.Options {
		return apkinstall.Options{Root: root, Repos: []apkinstall.Repo{{Path: repo}}, KeysDir: keys,
			Arch: "x86_64", InitDB: true, NoScripts: true, Out: out}
	}
	var out bytes.Buffer
	plainRoot := filepath.Join(t.TempDir(), "plain")
	plain, err := apkinstall.Add(context.Background(), opts(plainRoot, &out), world)
	if err != nil {
		t.Fatalf("Add() error = %v\n%s", err, out.String())
	}
	if plain.Preloaded != 0 {
		t.Errorf("Add() without Preloaded: Preloaded = %d, want 0", plain.Preloaded)
	}

	pre, err := apkinstall.LoadRepos(context.Background(), apkinstall.RepoOptions{
		Repos: []apkinstall.Repo{{Path: repo}}, KeysDir: keys, Arch: "x86_64"})
	if err != nil {
		t.Fatalf("LoadRepos() error = %v, want nil", err)
	}
	apktest.Must(t, os.Rename(idx, idx+".gone"))
	for i := range 2 { // a Repos serves more than one Add unchanged
		out.Reset()
		root := filepath.Join(t.TempDir(), "pre")
		o := opts(root, &out)
		o.Preloaded = pre
		res, err := apkinstall.Add(context.Background(), o, world)
		if err != nil {
			t.Fatalf("Add(Preloaded) #%d error = %v, want nil\n%s", i, err, out.String())
		}
		if res.Preloaded != 1 {
			t.Errorf("Add(Preloaded) #%d: Preloaded = %d, want 1", i, res.Preloaded)
		}
		if diff := cmp.Diff(plain.Installed, res.Installed); diff != "" {
			t.Errorf("Add(Preloaded) #%d installed (-plain +preloaded):\n%s", i, diff)
		}
		want, err := os.ReadFile(filepath.Join(plainRoot, db.InstalledPath))
		apktest.Must(t, err)
		got, err := os.ReadFile(filepath.Join(root, db.InstalledPath))
		apktest.Must(t, err)
		if diff := cmp.Diff(string(want), string(got)); diff != "" {
			t.Errorf("Add(Preloaded) #%d %s (-plain +preloaded):\n%s", i, db.InstalledPath, diff)
		}
	}
}

// TestAddPreloadedMismatch: preloaded indexes loaded under other conditions than Add's are not
// used; Add loads the index itself (here: finds it gone and says so, as without a preload).
func TestAddPreloadedMismatch(t *testing.T) {
	repo, idx := linkedRepo(t)
	keys := copyKeys(t)
	otherRepo, _ := linkedRepo(t)
	load := func(o apkinstall.RepoOptions) *apkinstall.Repos {
		t.Helper()
		pre, err := apkinstall.LoadRepos(context.Background(), o)
		if err != nil {
			t.Fatalf("LoadRepos(%+v) error = %v, want nil", o, err)
		}
		return pre
	}
	base := apkinstall.RepoOptions{Repos: []apkinstall.Repo{{Path: repo}}, KeysDir: keys, Arch: "x86_64"}
	extraKeys := copyKeys(t)
	apktest.NewKey(t, "extra.rsa.pub").WritePub(t, extraKeys)
	// An index signed by a key only the preload trusted.
	untrustedRepo := filepath.Join(t.TempDir(), "untrusted")
	untrustedKeys := filepath.Join(t.TempDir(), "ukeys")
	k := apktest.NewKey(t, "local.rsa.pub")
	apktest.Must(t, os.MkdirAll(filepath.Join(untrustedRepo, "x86_64"), 0o755))
	ixText := []byte("C:Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=\nP:foo\nV:1.0-r0\nA:x86_64\nS:1\nI:1\nT:t\nU:u\nL:MIT\n\n")
	apktest.Must(t, os.WriteFile(filepath.Join(untrustedRepo, "x86_64", "APKINDEX.tar.gz"), apktest.SignedIndex(t, k, ixText), 0o644))
	apktest.Must(t, os.MkdirAll(untrustedKeys, 0o755))

	tests := []struct {
		name    string
		pre     apkinstall.RepoOptions
		repo    string
		keys    string
		arch    string
		wantErr string // in Add's warning: it loaded the index itself
	}{
		{"other keys", base, repo, extraKeys, "x86_64", "APKINDEX.tar.gz"},
		{"other arch", apkinstall.RepoOptions{Repos: base.Repos, KeysDir: keys, Arch: "x86_64"}, repo, keys, "aarch64", "aarch64/APKINDEX.tar.gz"},
		{"other repository", apkinstall.RepoOptions{Repos: []apkinstall.Repo{{Path: otherRepo}}, KeysDir: keys, Arch: "x86_64"}, repo, keys, "x86_64", "APKINDEX.tar.gz"},
		{"untrusted accepted only by the preload", apkinstall.RepoOptions{Repos: []apkinstall.Repo{{Path: untrustedRepo}}, KeysDir: untrustedKeys, Arch: "x86_64", AllowUntrusted: true}, untrustedRepo, untrustedKeys, "x86_64", "UNTRUSTED signature"},
	}
	preloads := make([]*apkinstall.Repos, len(tests))
	for i, tc := range tests {
		preloads[i] = load(tc.pre)
	}
	apktest.Must(t, os.Rename(idx, idx+".gone"))
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			o := apkinstall.Options{Root: filepath.Join(t.TempDir(), "root"), Repos: []apkinstall.Repo{{Path: tc.repo}},
				KeysDir: tc.keys, Arch: tc.arch, InitDB: true, NoScripts: true, Diskless: true, Out: &out, Preloaded: preloads[i]}
			res, err := apkinstall.Add(context.Background(), o, []string{"busybox"})
			if err != nil {
				t.Fatalf("Add() error = %v, want nil (diskless)\n%s", err, out.String())
			}
			if res.Preloaded != 0 {
				t.Errorf("Add().Preloaded = %d, want 0", res.Preloaded)
			}
			if !strings.Contains(out.String(), "WARNING: Ignoring "+tc.repo) || !strings.Contains(out.String(), tc.wantErr) {
				t.Errorf("Add() output = %q, want the index load's warning naming %s and %q", out.String(), tc.repo, tc.wantErr)
			}
			if len(res.Installed) != 0 {
				t.Errorf("Add().Installed = %v, want nothing (no usable repository)", res.Installed)
			}
		})
	}
}

// TestLoadReposErrors: a preload that fails says why, naming the index or key.
func TestLoadReposErrors(t *testing.T) {
	keys := copyKeys(t)
	bad := filepath.Join(t.TempDir(), "badkeys")
	apktest.Must(t, os.MkdirAll(bad, 0o755))
	apktest.Must(t, os.WriteFile(filepath.Join(bad, "broken.rsa.pub"), []byte("not a key"), 0o644))
	missing := filepath.Join(t.TempDir(), "norepo")
	tests := []struct {
		name string
		o    apkinstall.RepoOptions
		want string
	}{
		{"no keys dir", apkinstall.RepoOptions{Repos: []apkinstall.Repo{{Path: missing}}}, "no keys directory"},
		{"bad key", apkinstall.RepoOptions{Repos: []apkinstall.Repo{{Path: missing}}, KeysDir: bad}, "broken.rsa.pub"},
		{"missing index", apkinstall.RepoOptions{Repos: []apkinstall.Repo{{Path: missing}}, KeysDir: keys, Arch: "x86_64"}, missing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pre, err := apkinstall.LoadRepos(context.Background(), tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) || pre != nil {
				t.Errorf("LoadRepos() = %v, %v; want nil and an error naming %q", pre, err, tc.want)
			}
		})
	}
}
