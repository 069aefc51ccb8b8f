package lbu

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCLI(t *testing.T) {
	root := newRoot(t, "LBU_BACKUPDIR=/media/bk\n")
	bk := filepath.Join(root, "media/bk")
	os.MkdirAll(bk, 0755)
	pkgDir := t.TempDir()
	env := func(k string) string { return map[string]string{"ROOT": root}[k] }
	noEnv := func(string) string { return "" }
	tests := []struct {
		name     string
		prog     string
		args     []string
		getenv   func(string) string
		code     int
		stdout   string // substring
		stderr   string // substring
		noStdout string
	}{
		{"no args", "lbu", nil, env, 2, "", "usage: lbu", ""},
		{"unknown", "lbu", []string{"frobnicate"}, env, 2, "", `unknown subcommand "frobnicate"`, ""},
		{"-a only for status", "lbu", []string{"commit", "-a"}, env, 2, "", "-a is only for status", ""},
		{"-n only for commit", "lbu", []string{"status", "-n"}, env, 2, "", "-n only for commit", ""},
		{"bad option", "lbu", []string{"ci", "-x"}, env, 2, "", "unknown option -x", ""},
		{"help", "lbu", []string{"commit", "-h"}, env, 0, "Available subcommands", "", ""},
		{"include add alias", "lbu", []string{"add", "-v", "/root/.ssh"}, env, 0, "Adding root/.ssh to /etc/apk/protected_paths.d/lbu.list", "", ""},
		{"include inc -l", "lbu", []string{"inc", "-l"}, env, 0, "root/.ssh\n", "", ""},
		{"exclude delete alias", "lbu", []string{"delete", "etc/motd"}, env, 0, "", "", ""},
		{"exclude ex -l -v", "lbu", []string{"ex", "-l", "-v"}, env, 0, "Exclude files:\netc/motd\n", "", ""},
		{"-l with args", "lbu", []string{"include", "-l", "x"}, env, 2, "", "-l takes no arguments", ""},
		{"list ls", "lbu", []string{"ls"}, env, 0, "etc/hostname\n", "", ""},
		{"--root flag", "ramboot", []string{"--root", root, "list"}, noEnv, 0, "etc/apk/world\n", "", ""},
		{"dry run", "lbu", []string{"ci", "-n"}, env, 0, "Would create " + filepath.Join(bk, "box.apkovl.tar.gz"), "", ""},
		{"status before commit", "lbu", []string{"st"}, env, 0, "A etc/hostname\n", "no committed overlay", ""},
		{"commit via lbu_commit", "/sbin/lbu_commit", []string{"-v"}, env, 0, "Created " + filepath.Join(bk, "box.apkovl.tar.gz"), "", ""},
		{"status after commit", "lbu", []string{"status"}, env, 0, "", "", "A etc/hostname"},
		{"status -a", "lbu", []string{"status", "-a"}, env, 0, "U etc/hostname\n", "", ""},
		{"package to dir", "lbu", []string{"pkg", "-v", pkgDir}, env, 0, "", "Created " + filepath.Join(pkgDir, "box.apkovl.tar.gz"), ""},
		{"package stdout", "lbu", []string{"package", "-"}, env, 0, "\x1f\x8b", "", ""},
		{"list-backup lb", "lbu", []string{"lb"}, env, 0, "", "", ""},
		{"revert missing", "lbu", []string{"revert", "box.20000101000000.tar.gz"}, env, 1, "", "file not found", ""},
		{"revert no arg", "lbu", []string{"revert"}, env, 2, "", "needs a REVISION", ""},
		{"encryption needs a password", "lbu", []string{"ci", "-e"}, env, 1, "", "needs a password", ""},
		{"encrypted with -p", "lbu", []string{"ci", "-e", "-v", "-p", "pw", "-d"}, env, 0, "Created " + filepath.Join(bk, "box.apkovl.tar.gz.aes-256-cbc"), "", ""},
		{"status of encrypted overlay without password", "lbu", []string{"status"}, env, 1, "", "needs a password", ""},
		{"diff with -p", "lbu", []string{"diff", "-p", "pw"}, env, 0, "", "", "diff -ruN"},
	}
	for _, tc := range tests {
		var out, errb bytes.Buffer
		code := Run(tc.prog, tc.args, tc.getenv, nil, &out, &errb)
		if code != tc.code {
			t.Errorf("%s: lbu %q = exit %d, want %d; stderr: %s", tc.name, tc.args, code, tc.code, errb.String())
		}
		if !strings.Contains(out.String(), tc.stdout) {
			t.Errorf("%s: lbu %q stdout = %q, want it to contain %q", tc.name, tc.args, out.String(), tc.stdout)
		}
		if !strings.Contains(errb.String(), tc.stderr) {
			t.Errorf("%s: lbu %q stderr = %q, want it to contain %q", tc.name, tc.args, errb.String(), tc.stderr)
		}
		if tc.noStdout != "" && strings.Contains(out.String(), tc.noStdout) {
			t.Errorf("%s: lbu %q stdout = %q, want no %q", tc.name, tc.args, out.String(), tc.noStdout)
		}
	}
	// Without LBU_MEDIA or LBU_BACKUPDIR, commit fails with a clear message (Alpine: usage).
	os.WriteFile(filepath.Join(root, "etc/lbu/lbu.conf"), []byte("# nothing\n"), 0644)
	var out, errb bytes.Buffer
	if code := Run("lbu", []string{"commit"}, env, nil, &out, &errb); code != 1 || !strings.Contains(errb.String(), "LBU_MEDIA") {
		t.Errorf("lbu commit without a medium = exit %d, stderr %q; want 1 and a message about LBU_MEDIA", code, errb.String())
	}
}
