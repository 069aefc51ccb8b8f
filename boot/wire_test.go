package boot

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ramboot/ramboot/internal/bootmedia"
	"github.com/ramboot/ramboot/internal/coldplug"
)

// TestMediaRescan: a device that appeared after the coldplug walk (before the uevent listener
// was open) gets its driver, because the media search rescans sysfs once it listens.
func TestMediaRescan(t *testing.T) {
	const e1000 = "insmod /lib/modules/" + testRelease + "/kernel/e1000.ko"
	tests := []struct {
		name   string
		rescan bool // the boot's own Rescan (MediaRequest.Rescan) instead of the loader's
	}{
		{"loader coldplug", false},
		{"request rescan", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			rec := NewRecorder()
			rec.Strip = root
			ix := newFakeIndex(filepath.Join(root, "lib/modules", testRelease))
			l := coldplug.New(coldplug.Options{Index: ix, SysRoot: root, Loader: rec, Sequential: true})
			// The coldplug walk ran on an empty tree; the NIC shows up afterwards.
			if rep := l.Coldplug(); len(rep.Loaded) != 0 {
				t.Fatalf("Coldplug(empty sysfs) loaded %v, want nothing", rep.Loaded)
			}
			writeTree(t, root, map[string][]byte{
				"sys/bus/pci/devices/0000:00:03.0/modalias": []byte("pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00\n"),
			}, nil)
			req := MediaRequest{Root: root, DevRoot: filepath.Join(root, "dev"), MediaRoot: filepath.Join(root, "media"),
				Deadline: 200 * time.Millisecond, Mounter: rec, Loader: l}
			called := false
			if tc.rescan {
				req.Rescan = func() { called = true; l.Coldplug() }
			}
			for _, d := range []string{"dev", "media", "sys/class/block", "sys/block"} {
				os.MkdirAll(filepath.Join(root, d), 0o755)
			}
			opts := mediaOptions(req)
			if opts.Rescan == nil {
				t.Fatalf("mediaOptions(loader set).Rescan = nil, want the coldplug rescan")
			}
			if _, err := bootmedia.Find(context.Background(), opts); err != nil {
				t.Fatalf("bootmedia.Find() = %v", err)
			}
			if !slices.Contains(rec.Lines(), e1000) {
				t.Errorf("after the media search, actions = %q, want %q", rec.Lines(), e1000)
			}
			if tc.rescan && !called {
				t.Errorf("MediaRequest.Rescan was not used")
			}
		})
	}
}

// TestInstallOptions: keep_apk_new is apk's default without --clean-protected; Alpine's
// initramfs passes --clean-protected unless keep_apk_new is given.
func TestInstallOptions(t *testing.T) {
	tests := []struct {
		keep, wantClean bool
	}{
		{false, true},
		{true, false},
	}
	for _, tc := range tests {
		o := apkOptions(InstallRequest{Root: "/sysroot", Repos: []string{"/media/vda/apks"}, KeepApkNew: tc.keep,
			OverlayPaths: []string{"etc/hostname"}})
		if o.CleanProtected != tc.wantClean {
			t.Errorf("apkOptions(KeepApkNew=%v).CleanProtected = %v, want %v", tc.keep, o.CleanProtected, tc.wantClean)
		}
		if !o.Diskless || !o.InitDB || o.Root != "/sysroot" || len(o.Repos) != 1 || o.Repos[0].Path != "/media/vda/apks" ||
			strings.Join(o.OverlayPaths, " ") != "etc/hostname" {
			t.Errorf("apkOptions(KeepApkNew=%v) = %+v, want diskless, initdb, the root, repository and overlay paths", tc.keep, o)
		}
	}
}
