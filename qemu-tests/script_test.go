package qemutests

import (
	"archive/tar"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ramboot/ramboot/internal/testdata"
)

// TestGuestScriptsParse checks every guest script this package generates with the shell that runs
// it in the guest: busybox ash from Alpine's minirootfs (chroot, so root is needed). A syntax
// error would otherwise only show up as a boot that never prints its markers.
func TestGuestScriptsParse(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("prerequisite missing: root (chroot into the Alpine minirootfs)")
	}
	mrf := testdata.Path(t, "alpine", "minirootfs", "alpine-minirootfs-3.19.4-x86_64.tar.gz")
	root := t.TempDir()
	extractBusybox(t, mrf, root)
	scripts := map[string]string{
		"services": checkScript(servicesChecks),
		"persist":  checkScript(persistChecks("tok", "/sbin/lbu")),
		"removal":  checkScript(removalChecks),
		"world":    checkScript(worldChecks),
		"backup":   checkScript(`check from "$(cat /etc/rbtest-origin)"`),
	}
	for name, body := range scripts {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(root, "check.start")
			if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command("chroot", root, "/bin/busybox", "sh", "-n", "/check.start").CombinedOutput()
			if err != nil {
				t.Errorf("busybox sh -n %s script: %v\n%s\n%s", name, err, out, body)
			}
		})
	}
	// The check must be able to fail.
	if err := os.WriteFile(filepath.Join(root, "bad"), []byte("if true; then\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("chroot", root, "/bin/busybox", "sh", "-n", "/bad").Run(); err == nil {
		t.Errorf("busybox sh -n accepted an unterminated if: the syntax check checks nothing")
	}
}

// extractBusybox unpacks only what busybox needs from the minirootfs.
func extractBusybox(t *testing.T, tgz, root string) {
	t.Helper()
	f, err := os.Open(tgz)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(h.Name, "./")
		if name != "bin/busybox" && !strings.HasPrefix(name, "lib/ld-musl") && !strings.HasPrefix(name, "lib/libc.musl") {
			continue
		}
		dst := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		switch h.Typeflag {
		case tar.TypeSymlink:
			if err := os.Symlink(h.Linkname, dst); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dst, b, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(root, "bin", "busybox")); err != nil {
		t.Fatalf("minirootfs %s has no bin/busybox: %v", tgz, err)
	}
}

// A getty prompt has no newline, so a check printed right after it shares its console line; the
// check must still be read (a flaky TestBootFATOverlay once lost "hostname" this way).
func TestParseChecksAfterLoginPrompt(t *testing.T) {
	text := "RAMBOOT-CHECK runlevel=default\nrbtest login: RAMBOOT-CHECK hostname=rbtest\n" +
		"RAMBOOT-OUT audit M etc/x\nrbtest login: RAMBOOT-OUT audit A etc/y\n"
	r := parseChecks(t, text)
	for k, want := range map[string]string{"runlevel": "default", "hostname": "rbtest"} {
		if got := r.checks[k]; got != want {
			t.Errorf("parseChecks(%q).checks[%q] = %q, want %q", text, k, got, want)
		}
	}
	if got, want := strings.Join(r.lines["audit"], "|"), "M etc/x|A etc/y"; got != want {
		t.Errorf("parseChecks(%q).lines[audit] = %q, want %q", text, got, want)
	}
}
