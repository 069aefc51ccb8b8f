package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ramboot/ramboot/internal/apkinstall"
	"github.com/ramboot/ramboot/internal/testdata"
)

func TestParseApkAdd(t *testing.T) {
	tests := []struct {
		args    []string
		want    apkinstall.Options
		world   []string
		overlay bool
		wantErr bool
	}{
		{
			args:  []string{"--root", "/r", "--initdb", "-X", "/a", "--repository=@edge /b", "busybox", "--no-network", "zlib>=1.2"},
			want:  apkinstall.Options{Root: "/r", InitDB: true, Repos: []apkinstall.Repo{{Path: "/a"}, {Tag: "edge", Path: "/b"}}},
			world: []string{"busybox", "zlib>=1.2"},
		},
		{
			args:    []string{"--initramfs-diskless-boot", "--overlay-from-stdin", "--clean-protected", "--keys-dir", "/k", "--arch", "aarch64", "-q", "alpine-base"},
			want:    apkinstall.Options{Root: "/", InitDB: true, Diskless: true, CleanProtected: true, KeysDir: "/k", Arch: "aarch64", Quiet: true},
			world:   []string{"alpine-base"},
			overlay: true,
		},
		{
			args:  []string{"-p", "/r", "--allow-untrusted", "--simulate", "--no-scripts", "--progress", "--repositories-file", "/f", "!foo"},
			want:  apkinstall.Options{Root: "/r", AllowUntrusted: true, Simulate: true, NoScripts: true, Progress: true, RepositoriesFile: "/f"},
			world: []string{"!foo"},
		},
		{args: []string{"--root"}, wantErr: true},
		{args: []string{"--bogus", "x"}, wantErr: true},
		{args: []string{"--root", "/r"}, wantErr: true}, // nothing to do
	}
	for _, tc := range tests {
		o, world, overlay, err := parseApkAdd(tc.args)
		if tc.wantErr {
			if err == nil {
				t.Errorf("parseApkAdd(%q) error = nil, want error", tc.args)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseApkAdd(%q) error: %v", tc.args, err)
			continue
		}
		if diff := cmp.Diff(tc.want, o); diff != "" {
			t.Errorf("parseApkAdd(%q) options (-want +got):\n%s", tc.args, diff)
		}
		if !cmp.Equal(world, tc.world) || overlay != tc.overlay {
			t.Errorf("parseApkAdd(%q) = world %q overlay %v, want %q %v", tc.args, world, overlay, tc.world, tc.overlay)
		}
	}
}

// The CLI end to end, as a separate process: output, exit codes, overlay paths from stdin.
func TestApkAddCLI(t *testing.T) {
	repo := testdata.Path(t, "alpine", "v3.19")
	keys := testdata.Path(t, "alpine", "keys")
	bin := filepath.Join(t.TempDir(), "ramboot")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	root := filepath.Join(t.TempDir(), "root")
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/hostname"), []byte("ovl\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	common := []string{"apk", "add", "--root", root, "--repository", repo, "--keys-dir", keys, "--arch", "x86_64", "--no-network", "--no-scripts"}
	tests := []struct {
		name     string
		args     []string
		stdin    string
		code     int
		stdout   string // exact, "" = not checked
		contains string // in combined output
	}{
		{name: "simulate", args: append(append([]string{}, common...), "--initdb", "--simulate", "busybox"), code: 0,
			stdout: "(1/2) Installing musl (1.2.4_git20230717-r4)\n(2/2) Installing busybox (1.36.1-r15)\nOK: 1 MiB in 2 packages\n"},
		{name: "unsatisfiable", args: append(append([]string{}, common...), "--initdb", "nonexistent-pkg"), code: 1,
			contains: "ERROR: unable to select packages:"},
		{name: "bad world", args: append(append([]string{}, common...), "--initdb", "foo>>"), code: 1, contains: "is not a valid world dependency"},
		{name: "untrusted", args: []string{"apk", "add", "--root", root, "--repository", repo, "--keys-dir", t.TempDir(), "--initdb", "busybox"}, code: 1,
			contains: "UNTRUSTED signature"},
		{name: "install with overlay", args: append(append([]string{}, common...), "--initdb", "--overlay-from-stdin", "alpine-baselayout"),
			stdin: "etc/hostname\n", code: 0, contains: "OK: "},
		{name: "usage", args: []string{"apk", "del", "x"}, code: 2},
	}
	for _, tc := range tests {
		cmd := exec.Command(bin, tc.args...)
		cmd.Stdin = strings.NewReader(tc.stdin)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if code != tc.code {
			t.Errorf("%s: exit code %d, want %d\n%s%s", tc.name, code, tc.code, stdout.String(), stderr.String())
		}
		if tc.stdout != "" && stdout.String() != tc.stdout {
			t.Errorf("%s: stdout = %q, want %q", tc.name, stdout.String(), tc.stdout)
		}
		if !strings.Contains(stdout.String()+stderr.String(), tc.contains) {
			t.Errorf("%s: output %q lacks %q", tc.name, stdout.String()+stderr.String(), tc.contains)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(root, "etc/hostname")); string(got) != "ovl\n" {
		t.Errorf("etc/hostname = %q after --overlay-from-stdin, want the overlay's", got)
	}
}
