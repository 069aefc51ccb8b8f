package db_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/ramboot/ramboot/internal/apkinstall/db"
	"github.com/ramboot/ramboot/internal/apkinstall/pkgstream"
)

// Records in the exact shape apk 2.14 writes (taken from a real root, fields shortened).
const installed = `C:Q1GnnDm59VZtPVL5vCI9r/HFzs2yI=
P:musl
V:1.2.3-r0
A:aarch64
S:391631
I:651264
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Maintainer <m@example.org>
t:1649396308
c:ee13d43a53938d8a04ba787b9423f3270a3c14a7
p:so:libc.musl-aarch64.so.1=1
F:lib
R:ld-musl-aarch64.so.1
a:0:0:755
Z:Q1si4jgdR3AZ9XAV0dRJ/bbz3pz8I=
R:libc.musl-aarch64.so.1
a:0:0:777
Z:Q14RpiCEfZIqcg1XDcVqp8QEpc9ks=

C:Q1AYNx2pLOAHRYZQgv3nM8TNtvRWY=
P:zz-meta
V:1-r0
S:1
I:0
T:meta
U:
L:MIT
D:musl>=1.2 !other
r:oldname
q:10
s:testing
f:sx
F:
R:toplevel
Z:Q1DmF/Zs1bLSnwEMrh6rMmR5o7Dxw=
F:var/empty
M:0:0:555
F:var/x
M:100:101:2755:Q1DinOf6JRpCRgM6vNqjOexd3oSnU=
R:f
a:100:101:640:Q1DinOf6JRpCRgM6vNqjOexd3oSnU=

`

func TestInstalledRoundTrip(t *testing.T) {
	root := t.TempDir()
	if err := db.Init(root, "x86_64"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, db.InstalledPath), []byte(installed), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := db.Read(root)
	if err != nil {
		t.Fatalf("Read() error: %v", err)
	}
	if len(d.Packages) != 2 || d.Packages[1].Flags != "sx" || len(d.Packages[1].Dirs) != 3 {
		t.Fatalf("Read() = %d packages, want 2 with zz-meta's flags and 3 dirs", len(d.Packages))
	}
	d.Packages[0].Triggers = []string{"/lib/*"}
	d.Packages[0].Scripts = []pkgstream.Script{{Type: "post-install", Data: []byte("#!/bin/sh\n")}}
	if err := d.Write(); err != nil {
		t.Fatalf("Write() error: %v", err)
	}
	got, err := os.ReadFile(filepath.Join(root, db.InstalledPath))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(installed, string(got)); diff != "" {
		t.Errorf("installed after Read+Write differs (-want +got):\n%s", diff)
	}
	trig, _ := os.ReadFile(filepath.Join(root, db.TriggersPath))
	if want := "Q1GnnDm59VZtPVL5vCI9r/HFzs2yI= /lib/*\n"; string(trig) != want {
		t.Errorf("triggers = %q, want %q", trig, want)
	}
	// scripts.tar and triggers are read back into the entries.
	d2, err := db.Read(root)
	if err != nil {
		t.Fatal(err)
	}
	if s := d2.Packages[0].Scripts; len(s) != 1 || s[0].Type != "post-install" || string(s[0].Data) != "#!/bin/sh\n" {
		t.Errorf("scripts read back = %+v", s)
	}
	if tr := d2.Packages[0].Triggers; len(tr) != 1 || tr[0] != "/lib/*" {
		t.Errorf("triggers read back = %v", tr)
	}
}

func TestInitLayout(t *testing.T) {
	root := t.TempDir()
	if err := db.Init(root, "aarch64"); err != nil {
		t.Fatal(err)
	}
	modes := map[string]uint32{"tmp": unix.S_IFDIR | 0o1777, "proc": unix.S_IFDIR | 0o555, "var/cache/apk": unix.S_IFDIR | 0o755, db.InstalledPath: unix.S_IFREG | 0o644}
	if os.Geteuid() == 0 {
		modes["dev/null"] = unix.S_IFCHR | 0o666
		modes["dev/console"] = unix.S_IFCHR | 0o600
	}
	for p, want := range modes {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(root, p), &st); err != nil || st.Mode != want {
			t.Errorf("%s: mode %o (%v), want %o", p, st.Mode, err, want)
		}
	}
	if got := db.ReadArch(root); got != "aarch64" {
		t.Errorf("ReadArch() = %q, want aarch64", got)
	}
}

func TestWorldAndRepositories(t *testing.T) {
	root := t.TempDir()
	if err := db.Init(root, "x86_64"); err != nil {
		t.Fatal(err)
	}
	if err := db.WriteWorld(root, []string{"zlib", "Abc", "abc", "busybox>=1.2", "!aa", "b@edge"}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(root, db.WorldPath))
	if want := "!aa\nAbc\nabc\nb@edge\nbusybox>=1.2\nzlib\n"; string(got) != want {
		t.Errorf("world = %q, want %q", got, want)
	}
	w, err := db.ReadWorld(root)
	if err != nil || len(w) != 6 {
		t.Errorf("ReadWorld() = %v, %v", w, err)
	}
	rf := filepath.Join(root, "repos")
	os.WriteFile(rf, []byte("# comment\n/media/cdrom/apks\n@edge /srv/edge\n\n"), 0o644)
	repos, err := db.ReadRepositories(rf)
	want := []db.RepoLine{{URL: "/media/cdrom/apks"}, {Tag: "edge", URL: "/srv/edge"}}
	if err != nil || !cmp.Equal(repos, want) {
		t.Errorf("ReadRepositories() = %v, %v; want %v", repos, err, want)
	}
	os.WriteFile(rf, []byte("@a b c\n"), 0o644)
	if _, err := db.ReadRepositories(rf); err == nil {
		t.Errorf("ReadRepositories(bad line) error = nil, want error naming the file")
	}
}
