package boot

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ramboot/ramboot/internal/bootmedia"
	"github.com/ramboot/ramboot/internal/coldplug"
	"golang.org/x/sys/unix"
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
			// Find may give up (deadline) while its rescan still runs; the test waits for it.
			rescanned := make(chan struct{})
			if tc.rescan {
				var once sync.Once // Find may rescan more than once
				req.Rescan = func() { l.Coldplug(); once.Do(func() { close(rescanned) }) }
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
			called := false
			if tc.rescan {
				select {
				case <-rescanned:
					called = true
				case <-time.After(10 * time.Second):
				}
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

// openPTY returns the master and slave of a new pseudo terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("prerequisite missing: /dev/ptmx (%v)", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("ptsname: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("prerequisite missing: /dev/pts/%d (%v)", n, err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

// TestConsolePassword: the password prompt exists only on an interactive console and with a
// timeout; it gives up after ramboot.prompt_timeout instead of hanging.
func TestConsolePassword(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	_, tty := openPTY(t)
	var out bytes.Buffer
	tests := []struct {
		name    string
		in      *os.File
		timeout time.Duration
		want    bool // a prompt function is returned
	}{
		{"no console", nil, time.Second, false},
		{"pipe, not a terminal", pr, time.Second, false},
		{"terminal, timeout 0", tty, 0, false},
		{"terminal", tty, 150 * time.Millisecond, true},
	}
	for _, tc := range tests {
		f := consolePassword(tc.in, &out, tc.timeout)
		if (f != nil) != tc.want {
			t.Errorf("consolePassword(%s) = %v, want a prompt: %v", tc.name, f != nil, tc.want)
		}
		if f == nil {
			continue
		}
		start := time.Now()
		_, err := f("Password: ")
		if took := time.Since(start); err == nil || took < tc.timeout || took > tc.timeout+2*time.Second {
			t.Errorf("prompt(%s) = %v after %v, want a timeout error after %v", tc.name, err, took, tc.timeout)
		}
	}

	// Someone at the console types the password.
	master, tty2 := openPTY(t)
	f := consolePassword(tty2, &out, 5*time.Second)
	if f == nil {
		t.Fatalf("consolePassword(terminal, 5s) = nil, want a prompt")
	}
	go master.Write([]byte("s3cret\n"))
	if pw, err := f("Password: "); err != nil || string(pw) != "s3cret" {
		t.Errorf("prompt(typed s3cret) = %q, %v, want \"s3cret\", nil", pw, err)
	}
}
