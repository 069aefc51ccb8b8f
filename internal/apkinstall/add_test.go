package apkinstall_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ramboot/ramboot/internal/apkinstall"
	"github.com/ramboot/ramboot/internal/apkinstall/apktest"
	"github.com/ramboot/ramboot/internal/apkinstall/db"
	"github.com/ramboot/ramboot/internal/testdata"
)

func realOpts(t *testing.T, root string, out *bytes.Buffer) apkinstall.Options {
	return apkinstall.Options{
		Root: root, Repos: []apkinstall.Repo{{Path: testdata.Path(t, "alpine", "v3.19")}},
		KeysDir: testdata.Path(t, "alpine", "keys"), Arch: "x86_64", InitDB: true, NoScripts: true, Out: out,
	}
}

func TestUnsatisfiableWorld(t *testing.T) {
	world := []string{"busybox", "no-such-package"}
	t.Run("normal", func(t *testing.T) {
		var out bytes.Buffer
		root := filepath.Join(t.TempDir(), "root")
		_, err := apkinstall.Add(context.Background(), realOpts(t, root, &out), world)
		if !errors.Is(err, apkinstall.ErrUnsatisfiable) || !strings.HasPrefix(err.Error(), "ERROR: unable to select packages:") || !strings.Contains(err.Error(), "no-such-package") {
			t.Fatalf("Add() error = %v, want apk's unable-to-select report naming no-such-package", err)
		}
		if names := installedNames(t, root); len(names) != 0 {
			t.Errorf("installed after a failed solve: %v", names)
		}
	})
	t.Run("diskless", func(t *testing.T) {
		var out bytes.Buffer
		root := filepath.Join(t.TempDir(), "root")
		o := realOpts(t, root, &out)
		o.Diskless = true
		res, err := apkinstall.Add(context.Background(), o, world)
		if err != nil {
			t.Fatalf("Add(diskless) error = %v, want nil\n%s", err, out.String())
		}
		if len(res.Dropped) != 1 || !strings.HasPrefix(res.Dropped[0], "no-such-package") {
			t.Errorf("Add().Dropped = %q, want no-such-package", res.Dropped)
		}
		assertInstalled(t, root, "busybox")
		if w, _ := db.ReadWorld(root); strings.Join(w, " ") != "busybox no-such-package" {
			t.Errorf("world = %v, want both entries kept (apk --force-broken-world keeps them)", w)
		}
	})
}

func TestOverlayWins(t *testing.T) {
	for _, clean := range []bool{false, true} {
		var out bytes.Buffer
		root := filepath.Join(t.TempDir(), "root")
		apktest.Must(t, os.MkdirAll(filepath.Join(root, "etc"), 0o755))
		apktest.Must(t, os.WriteFile(filepath.Join(root, "etc/hostname"), []byte("myhost\n"), 0o644))
		apktest.Must(t, os.WriteFile(filepath.Join(root, "etc/motd"), []byte("not in the overlay list\n"), 0o644))
		o := realOpts(t, root, &out)
		o.OverlayPaths = []string{"etc/hostname"}
		o.CleanProtected = clean
		if _, err := apkinstall.Add(context.Background(), o, []string{"alpine-baselayout"}); err != nil {
			t.Fatalf("Add() error: %v\n%s", err, out.String())
		}
		if got, _ := os.ReadFile(filepath.Join(root, "etc/hostname")); string(got) != "myhost\n" {
			t.Errorf("clean=%v: etc/hostname = %q, want the overlay's", clean, got)
		}
		if _, err := os.Stat(filepath.Join(root, "etc/hostname.apk-new")); err == nil {
			t.Errorf("clean=%v: etc/hostname.apk-new written for an overlay path", clean)
		}
		// A protected file that is not from the overlay stays too; the package's copy goes
		// beside it as .apk-new unless --clean-protected.
		if got, _ := os.ReadFile(filepath.Join(root, "etc/motd")); string(got) != "not in the overlay list\n" {
			t.Errorf("clean=%v: etc/motd = %q, want the local file", clean, got)
		}
		_, err := os.Stat(filepath.Join(root, "etc/motd.apk-new"))
		if (err == nil) == clean {
			t.Errorf("clean=%v: etc/motd.apk-new exists = %v", clean, err == nil)
		}
	}
}

func TestSimulateChangesNothing(t *testing.T) {
	var out bytes.Buffer
	root := filepath.Join(t.TempDir(), "root")
	o := realOpts(t, root, &out)
	o.Simulate = true
	if _, err := apkinstall.Add(context.Background(), o, []string{"busybox"}); err != nil {
		t.Fatal(err)
	}
	if want := "(1/2) Installing musl (1.2.4_git20230717-r4)\n(2/2) Installing busybox (1.36.1-r15)\nOK: 1 MiB in 2 packages\n"; out.String() != want {
		t.Errorf("simulate output = %q, want %q", out.String(), want)
	}
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Errorf("simulate created %s", root)
	}
}

// A second Add on top of an existing root upgrades nothing, adds the new package and keeps
// the first one's records (the boot does "apk add --initdb" first, then the real add).
func TestAddOnTop(t *testing.T) {
	var out bytes.Buffer
	root := filepath.Join(t.TempDir(), "root")
	if _, err := apkinstall.Add(context.Background(), realOpts(t, root, &out), []string{"busybox"}); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	o := realOpts(t, root, &out)
	o.InitDB = false
	res, err := apkinstall.Add(context.Background(), o, []string{"zlib"})
	if err != nil {
		t.Fatalf("second Add() error: %v\n%s", err, out.String())
	}
	if strings.Join(res.Installed, " ") != "zlib-1.3.1-r0" {
		t.Errorf("second Add().Installed = %v, want [zlib-1.3.1-r0]", res.Installed)
	}
	if got, want := strings.Join(installedNames(t, root), " "), "busybox musl zlib"; got != want {
		t.Errorf("installed = %q, want %q", got, want)
	}
	if w, _ := db.ReadWorld(root); strings.Join(w, " ") != "busybox zlib" {
		t.Errorf("world = %v, want busybox zlib", w)
	}
	d, err := db.Read(root)
	if err != nil {
		t.Fatal(err)
	}
	if e := d.Find("busybox"); e == nil || len(e.Dirs) == 0 || len(e.Triggers) == 0 || len(e.Scripts) == 0 {
		t.Errorf("busybox record lost its files, triggers or scripts: %+v", e)
	}
}

// Quiet hides progress but, like apk -q, not errors.
func TestQuietStillReportsErrors(t *testing.T) {
	_, _, files := realFiles(t)
	key := apktest.NewKey(t, "test-1.rsa.pub")
	raw := files[victim]
	f := makeFixture(t, key, key, raw[:len(raw)/2], nil, nil)
	var out bytes.Buffer
	_, err := apkinstall.Add(context.Background(), apkinstall.Options{
		Root: filepath.Join(t.TempDir(), "root"), Repos: []apkinstall.Repo{{Path: f.repo}}, KeysDir: f.keys,
		Arch: "x86_64", InitDB: true, NoScripts: true, Quiet: true, Out: &out,
	}, fixtureWorld)
	if !errors.Is(err, apkinstall.ErrIncomplete) {
		t.Fatalf("Add() error = %v, want ErrIncomplete", err)
	}
	if got := out.String(); !strings.HasPrefix(got, "ERROR: "+victim) || strings.Contains(got, "Installing") {
		t.Errorf("quiet output = %q, want only the ERROR line", got)
	}
}
