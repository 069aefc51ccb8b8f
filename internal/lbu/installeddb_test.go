package lbu

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestReadInstalledDBErrors(t *testing.T) {
	tests := []struct{ name, db, want string }{
		{"malformed line", "P:x\nnonsense\n", ":2: malformed line"},
		{"R before F", "P:x\nR:file\n", ":2: R: without F:"},
		{"bad acl", "P:x\nF:etc\nR:f\na:root:0:644\n", ":4: bad acl"},
		{"bad checksum", "P:x\nF:etc\nR:f\nZ:Q1notbase64!!\n", ":4: bad checksum"},
		{"unknown checksum", "P:x\nF:etc\nR:f\nZ:X1abcd\n", ":4: unsupported checksum"},
	}
	for _, tc := range tests {
		root := t.TempDir()
		os.MkdirAll(filepath.Join(root, "lib/apk/db"), 0755)
		os.WriteFile(filepath.Join(root, "lib/apk/db/installed"), []byte(tc.db), 0644)
		_, err := readInstalledDB(root)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "lib/apk/db/installed") {
			t.Errorf("%s: readInstalledDB() error = %v, want one naming the file and %q", tc.name, err, tc.want)
		}
	}
	if _, err := readInstalledDB(t.TempDir()); err == nil || !strings.Contains(err.Error(), "installed database") {
		t.Errorf("readInstalledDB(no db) error = %v, want one about the installed database", err)
	}
}

func TestReadInstalledDBRealMinirootfs(t *testing.T) {
	root := minirootfs(t)
	db, err := readInstalledDB(root)
	if err != nil {
		t.Fatal(err)
	}
	f := db.files["etc/crontabs/root"]
	if f == nil || f.acl != (acl{0, 0, 0600}) || f.alg != "sha1" || f.pkg != "alpine-baselayout" {
		t.Errorf("etc/crontabs/root = %+v, want alpine-baselayout, 0:0:0600, sha1", f)
	}
	if d := db.dirs["etc"]; d == nil || d.owners < 2 {
		t.Errorf("dir etc = %+v, want owned by several packages", d)
	}
	if f := db.files["etc/motd"]; f == nil || f.acl != defaultFileACL {
		t.Errorf("etc/motd acl = %+v, want the default %+v", f, defaultFileACL)
	}
}

func TestHookTimeout(t *testing.T) {
	root := t.TempDir()
	d := filepath.Join(root, "etc/lbu/pre-package.d")
	os.MkdirAll(d, 0755)
	os.WriteFile(filepath.Join(d, "slow"), []byte("#!/bin/sh\nexec sleep 30\n"), 0755)
	os.WriteFile(filepath.Join(d, "skip.sh"), []byte("#!/bin/sh\nexit 1\n"), 0755) // run-parts skips names with dots
	start := time.Now()
	err := runHooks(context.Background(), root, "pre-package.d", io.Discard, 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "timed out") || !strings.Contains(err.Error(), "slow") {
		t.Errorf("runHooks(slow hook) error = %v, want a timeout naming the hook", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("runHooks(slow hook) took %v, want about the timeout", el)
	}
	os.Remove(filepath.Join(d, "slow"))
	if err := runHooks(context.Background(), root, "pre-package.d", io.Discard, time.Second); err != nil {
		t.Errorf("runHooks() with only a dotted name = %v, want it skipped like run-parts", err)
	}
}
