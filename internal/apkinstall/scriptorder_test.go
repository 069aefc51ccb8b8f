package apkinstall_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/ramboot/ramboot/internal/apkinstall"
	"github.com/ramboot/ramboot/internal/apkinstall/apktest"
)

// Post-install scripts run beside the extraction of later packages; what must still hold:
// a pre-install script sees every earlier script's effects (busybox's post-install symlinks),
// and a package's files see what its pre-install did (a user it added owns them).
func TestScriptOrdering(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: package scripts run chrooted")
	}
	_, _, files := realFiles(t)
	pre := []byte("#!/bin/sh\n" +
		"[ -L /usr/bin/wc ] || { echo busybox post-install has not run; exit 7; }\n" +
		"echo 'scriptorder:x:4242:4242::/:/sbin/nologin' >> /etc/passwd\n")
	var owned string
	pkg, id := apktest.Rebuild(t, files[victim], func(e []apktest.Entry) []apktest.Entry {
		return apktest.WithScript(e, ".pre-install", pre)
	}, func(e []apktest.Entry) []apktest.Entry {
		for i := range e {
			if e[i].Hdr.Typeflag == tar.TypeReg && owned == "" {
				h := *e[i].Hdr
				h.Uname, h.Uid = "scriptorder", 0
				e[i].Hdr = &h
				owned = h.Name
			}
		}
		return e
	}, true)
	if owned == "" {
		t.Fatalf("package %s has no regular file to give an owner", victim)
	}
	key := apktest.NewKey(t, "test-1.rsa.pub")
	f := makeFixture(t, key, key, pkg, id, nil)
	// One CPU: scripts run in line, as apk's; more: they overlap the extraction.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, procs := range []int{1, 2} {
		runtime.GOMAXPROCS(procs)
		root := filepath.Join(t.TempDir(), "root")
		var out bytes.Buffer
		res, err := apkinstall.Add(context.Background(), apkinstall.Options{
			Root: root, Repos: []apkinstall.Repo{{Path: f.repo}}, KeysDir: f.keys, Arch: "x86_64",
			InitDB: true, Out: &out,
		}, fixtureWorld)
		if err != nil || res.Errors != 0 {
			t.Fatalf("Add(GOMAXPROCS=%d) = %d errors, %v; want none\n%s", procs, res.Errors, err, out.String())
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(root, owned), &st); err != nil {
			t.Fatal(err)
		}
		if st.Uid != 4242 {
			t.Errorf("owner of %s = %d, want 4242 (the user the pre-install script added)", owned, st.Uid)
		}
	}
}

// A failing trigger is reported with its package and leaves that package flagged "broken
// script" (f:s) in the database, as apk does, although the database is written while the
// triggers run.
func TestFailingTrigger(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: package scripts run chrooted")
	}
	_, _, files := realFiles(t)
	pkg, id := apktest.Rebuild(t, files[victim], func(e []apktest.Entry) []apktest.Entry {
		for i := range e {
			if e[i].Hdr.Name == ".PKGINFO" {
				e[i].Data = append(e[i].Data, []byte("\ntriggers = /lib\n")...)
			}
		}
		return apktest.WithScript(e, ".trigger", []byte("#!/bin/sh\nexit 3\n"))
	}, nil, true)
	key := apktest.NewKey(t, "test-1.rsa.pub")
	f := makeFixture(t, key, key, pkg, id, nil)
	root := filepath.Join(t.TempDir(), "root")
	var out, errw bytes.Buffer
	res, err := apkinstall.Add(context.Background(), apkinstall.Options{
		Root: root, Repos: []apkinstall.Repo{{Path: f.repo}}, KeysDir: f.keys, Arch: "x86_64",
		InitDB: true, Out: &out, Err: &errw,
	}, fixtureWorld)
	if res == nil || res.Errors != 1 || !errors.Is(err, apkinstall.ErrIncomplete) {
		t.Fatalf("Add with a failing trigger = %v, %v; want 1 error, ErrIncomplete\n%s%s", res, err, out.String(), errw.String())
	}
	if !strings.Contains(errw.String(), victim+"-") || !strings.Contains(errw.String(), ".trigger: script exited with error 3") {
		t.Errorf("error output = %q, want the package's trigger named with exit status 3", errw.String())
	}
	inst, err := os.ReadFile(filepath.Join(root, "lib/apk/db/installed"))
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range strings.Split(string(inst), "\n\n") {
		if strings.Contains(rec, "\nP:"+victim+"\n") {
			if !strings.Contains(rec, "\nf:s\n") {
				t.Errorf("installed record of %s lacks f:s:\n%s", victim, rec)
			}
			return
		}
	}
	t.Errorf("no installed record for %s", victim)
}
