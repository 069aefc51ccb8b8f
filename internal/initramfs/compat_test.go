package initramfs_test

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/u-root/u-root/pkg/kmodule"
	"golang.org/x/sys/unix"

	"github.com/ramboot/ramboot/internal/initramfs"
	"github.com/ramboot/ramboot/internal/kmod"
	"github.com/ramboot/ramboot/internal/kmod/kmodtest"
	"github.com/ramboot/ramboot/internal/testdata"
)

// TestImageIndexCompat checks that the module index the image carries works with the other
// readers the contract promises: u-root's pkg/kmodule and Alpine's busybox modprobe (run in the
// real minirootfs), each giving the same load order as kmod.Resolve.
func TestImageIndexCompat(t *testing.T) {
	root, err := testdata.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	mdir, why := kmodtest.RealModulesDir(root, "x86_64")
	if mdir == "" {
		t.Skipf("prerequisite missing: %s", why)
	}
	var img bytes.Buffer
	res, err := initramfs.Build(&img, initramfs.Options{Init: fakeInit(t, elf.EM_X86_64), ModulesDir: mdir})
	if err != nil {
		t.Fatal(err)
	}
	ext := t.TempDir()
	extract(t, readImage(t, img.Bytes()), ext)
	modDir := filepath.Join(ext, "lib", "modules", res.Release)
	ix, err := kmod.Load(modDir)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"sr_mod", "vfat", "virtio_blk", "virtio_pci", "isofs", "virtio_scsi", "loop"}

	t.Run("u-root kmodule", func(t *testing.T) {
		for _, n := range names {
			// A fresh prober each time: a prober remembers what it loaded.
			var mu sync.Mutex
			var loaded []string
			p, err := kmodule.NewProber(kmodule.ProbeOpts{RootDir: ext, KVer: res.Release, IgnoreProcMods: true,
				DryRunCB: func(path string) { mu.Lock(); loaded = append(loaded, path); mu.Unlock() }})
			if err != nil {
				t.Fatalf("kmodule.NewProber over the image = %v", err)
			}
			if err := p.Probe(n, ""); err != nil {
				t.Errorf("kmodule Probe(%s) = %v", n, err)
				continue
			}
			want, _ := ix.Resolve(n)
			for i := range want {
				want[i] = filepath.Join(modDir, want[i])
			}
			// u-root loads independent dependencies in parallel: compare the sets, and the
			// module itself must come last.
			if diff := cmp.Diff(sortedCopy(want), sortedCopy(loaded)); diff != "" {
				t.Errorf("kmodule Probe(%s) loads (-kmod.Resolve +kmodule):\n%s", n, diff)
			}
			if len(loaded) > 0 && loaded[len(loaded)-1] != want[len(want)-1] {
				t.Errorf("kmodule Probe(%s) loaded %s last, want %s", n, loaded[len(loaded)-1], want[len(want)-1])
			}
		}
	})

	t.Run("busybox modprobe", func(t *testing.T) {
		mr := testdata.Minirootfs(t)
		// busybox modprobe reads /lib/modules/$(uname -r): the host's release names the directory.
		var u unix.Utsname
		if err := unix.Uname(&u); err != nil {
			t.Fatal(err)
		}
		hostRel := unix.ByteSliceToString(u.Release[:])
		if err := os.MkdirAll(filepath.Join(mr, "lib", "modules"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(modDir, filepath.Join(mr, "lib", "modules", hostRel)); err != nil {
			t.Fatal(err)
		}
		aliases := map[string]string{"virtio:d00000002v00001AF4": "virtio_blk", "fs-vfat": "vfat"}
		queries := append([]string{}, names...)
		for a := range aliases {
			queries = append(queries, a)
		}
		for _, q := range queries {
			out, err := exec.Command("chroot", mr, "/bin/busybox", "modprobe", "-D", q).CombinedOutput()
			if err != nil {
				t.Errorf("busybox modprobe -D %s: %v\n%s", q, err, out)
				continue
			}
			var got []string
			for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				got = append(got, strings.TrimPrefix(strings.TrimSpace(strings.TrimPrefix(l, "insmod ")), "/lib/modules/"+hostRel+"/"))
			}
			name := q
			if a, ok := aliases[q]; ok {
				name = a
			}
			want, _ := ix.Resolve(name)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("busybox modprobe -D %s (-kmod.Resolve +busybox):\n%s", q, diff)
			}
		}
	})
}
