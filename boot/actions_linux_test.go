package boot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUnixActions exercises the real system calls that are safe on a test machine: a tmpfs
// mounted, moved and unmounted inside a temp dir, a spawned child (without a terminal), and
// clear errors for a missing module file.
func TestUnixActions(t *testing.T) {
	a := NewUnixActions()
	if err := a.LoadModule(filepath.Join(t.TempDir(), "nope.ko"), ""); err == nil || !strings.Contains(err.Error(), "nope.ko") {
		t.Errorf("LoadModule(missing) = %v, want an error naming nope.ko", err)
	}
	if err := a.Spawn("", "/bin/sh", []string{"sh", "-c", "exit 0"}, nil); err != nil {
		t.Errorf("Spawn(sh -c 'exit 0') = %v, want nil (falls back to no controlling tty)", err)
	}
	if err := a.Spawn("", "/bin/sh", []string{"sh", "-c", "exit 3"}, nil); err == nil {
		t.Errorf("Spawn(sh -c 'exit 3') = nil, want the exit status")
	}
	if os.Geteuid() != 0 {
		t.Skip("prerequisite missing: root (mount(2))")
	}
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	os.Mkdir(src, 0o755)
	os.Mkdir(dst, 0o755)
	if err := a.Mount("tmpfs", src, "tmpfs", MSNosuid, "mode=0755,size=1m"); err != nil {
		t.Fatalf("Mount(tmpfs) = %v", err)
	}
	os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644)
	if err := a.Mount(src, dst, "", MSMove, ""); err != nil {
		a.Unmount(src, 0)
		t.Fatalf("Mount(move) = %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "f")); err != nil || string(b) != "x" {
		t.Errorf("moved mount content = %q, %v, want x", b, err)
	}
	if err := a.Unmount(dst, 0); err != nil {
		t.Errorf("Unmount(moved) = %v", err)
	}
	if err := a.Unmount(dst, 0); err == nil || !strings.Contains(err.Error(), dst) {
		t.Errorf("Unmount(not mounted) = %v, want an error naming %s", err, dst)
	}
	if err := a.Mount("tmpfs", src, "tmpfs", 0, "size=lots"); err == nil || !strings.Contains(err.Error(), src) {
		t.Errorf("Mount(bad options) = %v, want an error naming %s", err, src)
	}
}
