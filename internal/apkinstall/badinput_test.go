package apkinstall_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ramboot/ramboot/internal/apkinstall"
	"github.com/ramboot/ramboot/internal/apkinstall/apktest"
	"github.com/ramboot/ramboot/internal/apkinstall/db"
	"github.com/ramboot/ramboot/internal/apkinstall/extract"
	"github.com/ramboot/ramboot/internal/apkinstall/pkgstream"
	"github.com/ramboot/ramboot/internal/apkinstall/sign"
	"github.com/ramboot/ramboot/internal/testdata"
)

// The fixture world: musl and busybox stay intact, zlib is the package each case breaks.
var fixtureWorld = []string{"busybox", "zlib"}

const victim = "zlib"

type fixture struct {
	repo, keys string
	indexPath  string
}

// realFiles returns the real index text and the raw bytes of the fixture's packages.
func realFiles(t *testing.T) ([]byte, map[string]apktest.Record, map[string][]byte) {
	t.Helper()
	dir := testdata.Path(t, "alpine", "v3.19", "x86_64")
	raw, err := os.ReadFile(filepath.Join(dir, "APKINDEX.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	text := apktest.Inflate(t, apktest.Members(t, raw)[1])
	var apkindex []byte
	for _, e := range apktest.ReadTar(t, text) {
		if e.Hdr.Name == "APKINDEX" {
			apkindex = e.Data
		}
	}
	recs := apktest.IndexRecords(t, apkindex)
	files := map[string][]byte{}
	for _, n := range []string{"musl", "busybox", "zlib"} {
		r := recs[n]
		b, err := os.ReadFile(filepath.Join(dir, r.Name+"-"+r.Version+".apk"))
		if err != nil {
			t.Fatal(err)
		}
		files[n] = b
	}
	return apkindex, recs, files
}

// makeFixture writes a repository signed by a throwaway key that the keys dir trusts (unless
// signer is another key), with the victim package replaced by pkgRaw (nil = file missing) and
// its C: set to id (nil = unchanged).
func makeFixture(t *testing.T, signer, trusted *apktest.Key, pkgRaw, id []byte, editIndex func([]byte) []byte) fixture {
	t.Helper()
	text, recs, files := realFiles(t)
	if id != nil {
		text = apktest.ReplaceChecksum(t, text, victim, id)
	}
	f := fixture{repo: t.TempDir(), keys: t.TempDir()}
	arch := filepath.Join(f.repo, "x86_64")
	apktest.Must(t, os.MkdirAll(arch, 0o755))
	trusted.WritePub(t, f.keys)
	idx := apktest.SignedIndex(t, signer, text)
	if editIndex != nil {
		idx = editIndex(idx)
	}
	f.indexPath = filepath.Join(arch, "APKINDEX.tar.gz")
	apktest.Must(t, os.WriteFile(f.indexPath, idx, 0o644))
	for n, b := range files {
		if n == victim {
			if b = pkgRaw; b == nil {
				continue
			}
		}
		r := recs[n]
		apktest.Must(t, os.WriteFile(filepath.Join(arch, r.Name+"-"+r.Version+".apk"), b, 0o644))
	}
	return f
}

// addEntries appends data entries to the victim package, keeping the hash chain valid: the
// attack comes from a package the signed index vouches for.
func addEntries(extra ...apktest.Entry) func([]apktest.Entry) []apktest.Entry {
	return func(ents []apktest.Entry) []apktest.Entry {
		for i := range extra {
			apktest.FileSum(&extra[i])
		}
		return append(ents, extra...)
	}
}

func reg(name, content string) apktest.Entry {
	return apktest.Entry{Hdr: &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Uname: "root", Gname: "root", ModTime: time.Unix(1700000000, 0)}, Data: []byte(content)}
}

func dirEnt(name string) apktest.Entry {
	return apktest.Entry{Hdr: &tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, Uname: "root", Gname: "root"}}
}

func link(typ byte, name, target string) apktest.Entry {
	return apktest.Entry{Hdr: &tar.Header{Typeflag: typ, Name: name, Linkname: target, Mode: 0o777, Uname: "root", Gname: "root"}}
}

func TestBadInput(t *testing.T) {
	_, _, files := realFiles(t)
	raw := files[victim]
	key := apktest.NewKey(t, "test-1.rsa.pub")
	other := apktest.NewKey(t, "other-2.rsa.pub")

	tamper := func(ents []apktest.Entry) []apktest.Entry {
		for i := range ents {
			if ents[i].Hdr.Typeflag == tar.TypeReg && len(ents[i].Data) > 0 {
				ents[i].Data = append([]byte{}, ents[i].Data...)
				ents[i].Data[len(ents[i].Data)/2] ^= 1
				return ents
			}
		}
		t.Fatal("no regular file to tamper with")
		return nil
	}
	fileBad, fileBadID := apktest.Rebuild(t, raw, nil, tamper, true)
	dataBad, dataBadID := apktest.Rebuild(t, raw, nil, func(e []apktest.Entry) []apktest.Entry {
		e = tamper(e)
		for i := range e {
			apktest.FileSum(&e[i])
		}
		return e
	}, false)
	ctlBad, _ := apktest.Rebuild(t, raw, func(e []apktest.Entry) []apktest.Entry {
		e[0].Data = append(e[0].Data, "# changed\n"...)
		return e
	}, nil, false)
	escape := func(extra ...apktest.Entry) ([]byte, []byte) {
		return apktest.Rebuild(t, raw, nil, addEntries(extra...), true)
	}
	dotdot, dotdotID := escape(reg("../escape-dotdot", "x"))
	abs, absID := escape(reg("/escape-abs", "x"))
	inner, innerID := escape(dirEnt("lib/"), reg("lib/../../escape-inner", "x"))
	symParent, symParentID := escape(dirEnt("lib/"), link(tar.TypeSymlink, "lib/up", "../../.."), reg("lib/up/escape-symparent", "x"))
	symDir, symDirID := escape(dirEnt("lib/"), link(tar.TypeSymlink, "lib/up", "/.."), dirEnt("lib/up/"), reg("lib/up/escape-symdir", "x"))
	hardAbs, hardAbsID := escape(dirEnt("lib/"), link(tar.TypeLink, "lib/escape-hardabs", "/etc/hostname"))
	hardUp, hardUpID := escape(dirEnt("lib/"), link(tar.TypeLink, "lib/escape-hardup", "../../../../etc/hostname"))
	hardOther, hardOtherID := escape(dirEnt("lib/"), link(tar.TypeLink, "lib/escape-hardother", "bin/busybox"))

	flip := func(b []byte) []byte {
		ms := apktest.Members(t, b)
		c := append([]byte{}, b...)
		c[len(ms[0])+len(ms[1])/2] ^= 0xff
		return c
	}

	tests := []struct {
		name      string
		signer    *apktest.Key
		pkg, id   []byte
		editIndex func([]byte) []byte
		wantIs    error  // errors.Is target, nil = only the message check
		wantMsg   string // substring of the error
		indexErr  bool   // the whole run is refused (no package names it)
	}{
		{name: "unknown signing key", signer: other, pkg: raw, wantIs: sign.ErrUntrusted, wantMsg: "other-2.rsa.pub", indexErr: true},
		{name: "broken index signature", signer: key, pkg: raw, editIndex: flip, wantMsg: "BAD signature", indexErr: true},
		{name: "control stream != C:", signer: key, pkg: ctlBad, wantIs: pkgstream.ErrIdentity},
		{name: "data stream != datahash", signer: key, pkg: dataBad, id: dataBadID, wantIs: pkgstream.ErrDataHash},
		{name: "file != checksum", signer: key, pkg: fileBad, id: fileBadID, wantIs: pkgstream.ErrFileHash},
		{name: "truncated package", signer: key, pkg: raw[:len(raw)*2/3], wantIs: pkgstream.ErrTruncated},
		{name: "missing package file", signer: key, pkg: nil, wantIs: fs.ErrNotExist},
		{name: "../ name", signer: key, pkg: dotdot, id: dotdotID, wantIs: extract.ErrMalicious, wantMsg: "../escape-dotdot"},
		{name: "absolute name", signer: key, pkg: abs, id: absID, wantIs: extract.ErrMalicious},
		{name: "inner .. component", signer: key, pkg: inner, id: innerID, wantIs: extract.ErrMalicious},
		{name: "file under symlinked parent", signer: key, pkg: symParent, id: symParentID, wantIs: extract.ErrMalicious},
		{name: "directory entry over own symlink", signer: key, pkg: symDir, id: symDirID, wantIs: extract.ErrMalicious},
		{name: "hardlink to absolute path", signer: key, pkg: hardAbs, id: hardAbsID, wantIs: extract.ErrMalicious},
		{name: "hardlink with ..", signer: key, pkg: hardUp, id: hardUpID, wantIs: extract.ErrMalicious},
		{name: "hardlink to another package's file", signer: key, pkg: hardOther, id: hardOtherID, wantIs: extract.ErrMalicious},
	}
	for _, tc := range tests {
		for _, diskless := range []bool{false, true} {
			name := tc.name
			if diskless {
				if tc.indexErr {
					continue
				}
				name += "/diskless"
			}
			t.Run(name, func(t *testing.T) {
				f := makeFixture(t, tc.signer, key, tc.pkg, tc.id, tc.editIndex)
				base := t.TempDir()
				root := filepath.Join(base, "root")
				var out bytes.Buffer
				res, err := apkinstall.Add(context.Background(), apkinstall.Options{
					Root: root, Repos: []apkinstall.Repo{{Path: f.repo}}, KeysDir: f.keys, Arch: "x86_64",
					InitDB: true, NoScripts: true, Diskless: diskless, Out: &out,
				}, fixtureWorld)
				assertNothingOutside(t, base)
				if tc.indexErr {
					t.Log(err)
					if err == nil {
						t.Fatalf("Add() error = nil, want refusal of the index")
					}
					if !strings.Contains(err.Error(), f.indexPath) || !strings.Contains(err.Error(), tc.wantMsg) {
						t.Errorf("Add() error = %q, want it to name %s and say %q", err, f.indexPath, tc.wantMsg)
					}
					if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
						t.Errorf("Add() error = %v, want errors.Is %v", err, tc.wantIs)
					}
					assertNotInstalled(t, root, "busybox")
					return
				}
				if diskless && err != nil {
					t.Fatalf("Add(diskless) error = %v, want nil (boot goes on)\n%s", err, out.String())
				}
				if !diskless && !errors.Is(err, apkinstall.ErrIncomplete) {
					t.Fatalf("Add() error = %v, want ErrIncomplete\n%s", err, out.String())
				}
				if res == nil || len(res.Failed) != 1 || !strings.HasPrefix(res.Failed[0].Package, victim+"-") {
					t.Fatalf("Add().Failed = %+v, want exactly %s", res, victim)
				}
				ferr := res.Failed[0]
				if !strings.Contains(ferr.Error(), victim) || !strings.Contains(ferr.Error(), tc.wantMsg) {
					t.Errorf("failure %q does not name %s or say %q", ferr.Error(), victim, tc.wantMsg)
				}
				if tc.wantIs != nil && !errors.Is(ferr, tc.wantIs) {
					t.Errorf("failure = %v, want errors.Is %v", ferr, tc.wantIs)
				}
				if !strings.Contains(out.String(), "ERROR: "+victim) || !strings.Contains(out.String(), "1 error;") {
					t.Errorf("output does not report the failure like apk:\n%s", out.String())
				}
				assertNotInstalled(t, root, victim)
				assertInstalled(t, root, "busybox")
				if _, err := os.Lstat(filepath.Join(root, "bin", "busybox")); err != nil {
					t.Errorf("busybox not extracted: %v", err)
				}
			})
		}
	}
}

// assertNothingOutside checks that no "escape" file appeared anywhere under base outside root,
// nor in the directories a hostile path could reach from there.
func assertNothingOutside(t *testing.T, base string) {
	t.Helper()
	for _, dir := range []string{base, filepath.Dir(base), "/", "/etc"} {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "escape") {
				t.Errorf("%s written outside the root", filepath.Join(dir, e.Name()))
			}
		}
	}
	filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), "escape") && !strings.HasPrefix(p, filepath.Join(base, "root")+"/") {
			t.Errorf("%s written outside the root", p)
		}
		return nil
	})
}

func installedNames(t *testing.T, root string) []string {
	t.Helper()
	d, err := db.Read(root)
	if err != nil {
		t.Fatal(err)
	}
	var n []string
	for _, e := range d.Packages {
		n = append(n, e.Pkg.Name)
	}
	return n
}

func assertNotInstalled(t *testing.T, root, name string) {
	t.Helper()
	for _, n := range installedNames(t, root) {
		if n == name {
			t.Errorf("%s recorded as installed in %s", name, db.InstalledPath)
		}
	}
}

func assertInstalled(t *testing.T, root, name string) {
	t.Helper()
	for _, n := range installedNames(t, root) {
		if n == name {
			return
		}
	}
	t.Errorf("%s not recorded as installed", name)
}
