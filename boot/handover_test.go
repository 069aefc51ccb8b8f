package boot

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
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

func TestFstabMatches(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "sys/devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host0/target0:0:0/0:0:0:0/block/sda/sda1"), 0o755)
	os.MkdirAll(filepath.Join(root, "sys/devices/pci0000:00/0000:00:04.0/virtio1/block/vda"), 0o755)
	os.MkdirAll(filepath.Join(root, "sys/class/block"), 0o755)
	os.Symlink("../../devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host0/target0:0:0/0:0:0:0/block/sda/sda1", filepath.Join(root, "sys/class/block/sda1"))
	os.Symlink("../../devices/pci0000:00/0000:00:04.0/virtio1/block/vda", filepath.Join(root, "sys/class/block/vda"))
	s := &state{env: &Env{Root: root}}
	usb := Medium{Device: "/dev/sda1", Label: "ALPINE", UUID: "1234-ABCD"}
	virt := Medium{Device: "/dev/vda", Label: "DATA"}
	cd := Medium{Device: "/dev/sr0", Label: "alpine-std 3.19.1 x86_64"}
	tests := []struct {
		spec string
		m    Medium
		want bool
	}{
		{"/dev/sda1", usb, true},
		{"/dev/sda", usb, false},
		{"UUID=1234-abcd", usb, true},
		{`LABEL="ALPINE"`, usb, true},
		{"LABEL=ALPINE", virt, false},
		{"/dev/usbdisk", usb, true},
		{"/dev/usbdisk", virt, false},
		{"/dev/cdrom", cd, true},
		{"/dev/cdrom", usb, false},
		{"UUID=", virt, false},
	}
	for _, tt := range tests {
		if got := s.matches(tt.spec, tt.m); got != tt.want {
			t.Errorf("matches(%q, %s) = %v, want %v", tt.spec, tt.m.Device, got, tt.want)
		}
	}
}

func TestLoggerEcho(t *testing.T) {
	var console, kmsg strings.Builder
	l := NewLogger(&console)
	l.Infof("p", "before kmsg")
	l.AttachKmsg(&kmsg, 5) // the kernel echoes levels < 5 (err, warn) itself
	l.Infof("p", "info")
	l.Errorf("p", "broken")
	l.SetQuiet(true)
	l.Infof("p", "hidden")
	l.Warnf("p", "warned")
	if got, want := console.String(), "ramboot: p: before kmsg\nramboot: p: info\n"; got != want {
		t.Errorf("console = %q, want %q", got, want)
	}
	if got, want := kmsg.String(), "<6>ramboot: p: info\n<3>ramboot: p: broken\n<6>ramboot: p: hidden\n<4>ramboot: p: warned\n"; got != want {
		t.Errorf("kmsg = %q, want %q", got, want)
	}
}

// nopCloser is a kmsg handle opened for one record.
type nopCloser struct {
	*strings.Builder
	closed *int
}

func (n nopCloser) Close() error { *n.closed++; return nil }

// TestLoggerReopensKmsgForErrors: warnings and errors go through a fresh /dev/kmsg handle each
// (the kernel rate-limits per open file, 10 records per 5 s), progress lines through the shared
// one, so a chatty boot cannot push its errors out of the log.
func TestLoggerReopensKmsgForErrors(t *testing.T) {
	var console, shared, fresh strings.Builder
	opened, closed := 0, 0
	l := NewLogger(&console)
	l.AttachKmsg(&shared, 5)
	l.ReopenKmsg(func() (io.WriteCloser, error) { opened++; return nopCloser{&fresh, &closed}, nil })
	for i := 0; i < 20; i++ {
		l.Debugf("p", "noise")
		l.Infof("p", "progress")
	}
	l.Warnf("p", "warned")
	l.Errorf("p", "broken")
	if got, want := fresh.String(), "<4>ramboot: p: warned\n<3>ramboot: p: broken\n"; got != want {
		t.Errorf("records through fresh handles = %q, want %q", got, want)
	}
	if opened != 2 || closed != 2 {
		t.Errorf("fresh kmsg handles opened %d, closed %d; want 2, 2 (one per warning/error)", opened, closed)
	}
	if strings.Contains(shared.String(), "broken") || !strings.Contains(shared.String(), "<6>ramboot: p: progress") {
		t.Errorf("shared kmsg handle = %q, want the progress lines and no error", shared.String())
	}
}

func TestChooseOverlayPreferred(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "vda"), filepath.Join(dir, "sdb")
	writeTree(t, a, map[string][]byte{"old.apkovl.tar.gz": tarGz(t, map[string]string{"etc/": ""})},
		map[string]time.Time{"old.apkovl.tar.gz": time.Unix(1600000000, 0)})
	writeTree(t, b, map[string][]byte{"new.apkovl.tar.gz": tarGz(t, map[string]string{"etc/": ""})},
		map[string]time.Time{"new.apkovl.tar.gz": time.Unix(1700000000, 0)})
	choose := DefaultDeps(nil, "x86_64").ChooseOverlay
	media := []Medium{
		{Device: "/dev/vda", Mountpoint: a, Apkovls: []string{filepath.Join(a, "old.apkovl.tar.gz")}},
		{Device: "/dev/sdb", Mountpoint: b, Apkovls: []string{filepath.Join(b, "new.apkovl.tar.gz")}},
	}
	if got := choose(media, "").Path; got != filepath.Join(b, "new.apkovl.tar.gz") {
		t.Errorf("ChooseOverlay(no preference) = %q, want the newest", got)
	}
	if got := choose(media, "old").Path; got != filepath.Join(a, "old.apkovl.tar.gz") {
		t.Errorf("ChooseOverlay(hostname old) = %q, want the one named after the host", got)
	}
	media[0].Preferred = true
	if got := choose(media, "").Path; got != filepath.Join(a, "old.apkovl.tar.gz") {
		t.Errorf("ChooseOverlay(vda preferred) = %q, want the preferred medium's", got)
	}
	// Leftovers on any medium are named with the reason, and never chosen.
	writeTree(t, b, map[string][]byte{"newest.apkovl.tar.gz.new": []byte("x"), ".lbu-commit-1.tmp": []byte("x")}, nil)
	media[0].Preferred = false
	ch := choose(media, "")
	if got := ch.Path; got != filepath.Join(b, "new.apkovl.tar.gz") {
		t.Errorf("ChooseOverlay(with leftovers) = %q, want the newest real apkovl", got)
	}
	want := []string{
		filepath.Join(b, ".lbu-commit-1.tmp") + ": ignored: temporary file of an interrupted lbu commit",
		filepath.Join(b, "newest.apkovl.tar.gz.new") + `: ignored: leftover temporary file (suffix "new" is not a cipher)`,
	}
	if diff := cmp.Diff(want, ch.Ignored); diff != "" {
		t.Errorf("ChooseOverlay(with leftovers).Ignored mismatch (-want +got):\n%s", diff)
	}
}
