package boot

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHandoverRefuses(t *testing.T) {
	tests := []struct {
		name string
		mod  func(h *harness)
		want string
	}{
		{"not-pid1", func(h *harness) { h.env.Getpid = func() int { return 42 } }, "not PID 1 (pid 42)"},
		{"same-device", func(h *harness) { h.env.DevOf = func(string) (uint64, error) { return 1, nil } }, "not a separate mount"},
		{"init-missing", func(h *harness) {}, "/sbin/nope not found in the new root"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := scenario{cmdline: "noapkovl panic=0", media: []fakeMedium{repoMedium("vda", nil)}}
			if tt.name == "init-missing" {
				sc.cmdline += " init=/sbin/nope"
			}
			h := newHarness(t, sc)
			tt.mod(h)
			_, err := Run(context.Background(), h.env)
			var f *Failure
			if !errors.As(err, &f) || f.Phase != "handover" || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Run() error = %v, want handover failure containing %q", err, tt.want)
			}
			for _, l := range h.rec.Lines() {
				if strings.HasPrefix(l, "mount -o move") || strings.HasPrefix(l, "chroot") || strings.HasPrefix(l, "exec") {
					t.Errorf("action %q after a refused handover", l)
				}
			}
			// Nothing of the initramfs may be deleted when the handover is refused.
			if _, err := os.Stat(filepath.Join(h.root, "init")); err != nil {
				t.Errorf("initramfs /init after refused handover: %v, want present", err)
			}
		})
	}
}

func TestFreeTree(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string][]byte{
		"init": nil, "bin/busybox": nil, "lib/modules/x/a.ko": nil,
		"sysroot/etc/hostname": []byte("h"), "media/vda/apks/.boot_repository": nil,
	}, nil)
	os.Symlink("/etc/passwd", filepath.Join(root, "bin/link")) // a link is removed, its target never followed
	devOf := func(p string) (uint64, error) {
		if strings.HasPrefix(p, filepath.Join(root, "media/vda")) {
			return 9, nil
		}
		return 1, nil
	}
	n := freeTree(root, 1, filepath.Join(root, "sysroot"), devOf)
	var left []string
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		rel, _ := filepath.Rel(root, p)
		left = append(left, rel)
		return nil
	})
	want := ". media media/vda media/vda/apks media/vda/apks/.boot_repository sysroot sysroot/etc sysroot/etc/hostname"
	if got := strings.Join(left, " "); got != want {
		t.Errorf("freeTree left %q, want %q", got, want)
	}
	if n != 8 {
		t.Errorf("freeTree removed %d entries, want 8", n)
	}
	if _, err := os.Stat("/etc/passwd"); err != nil {
		t.Errorf("symlink target touched: %v", err)
	}
}

func TestResolveIn(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string][]byte{"bin/busybox": nil}, nil)
	os.MkdirAll(filepath.Join(root, "sbin"), 0o755)
	os.Symlink("/bin/busybox", filepath.Join(root, "sbin/init"))
	os.Symlink("../bin/busybox", filepath.Join(root, "sbin/rel"))
	os.Symlink("/sbin/loop", filepath.Join(root, "sbin/loop"))
	os.Symlink("../../../../etc/passwd", filepath.Join(root, "sbin/escape"))
	tests := []struct{ in, want, err string }{
		{"/sbin/init", "bin/busybox", ""},
		{"/sbin/rel", "bin/busybox", ""},
		{"sbin/init", "bin/busybox", ""},
		{"/sbin/loop", "", "too many levels"},
		{"/sbin/escape", "", "no such file"}, // .. stops at the root: /etc/passwd inside root
		{"/nope", "", "no such file"},
	}
	for _, tt := range tests {
		got, err := resolveIn(root, tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("resolveIn(%q) error = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if want := filepath.Join(root, tt.want); err != nil || got != want {
			t.Errorf("resolveIn(%q) = %q, %v, want %q", tt.in, got, err, want)
		}
	}
}
