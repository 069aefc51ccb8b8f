package vm

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/u-root/u-root/pkg/cpio"

	"github.com/ramboot/ramboot/internal/testdata"
)

func TestConsoleCleaning(t *testing.T) {
	tests := []struct {
		name   string
		chunks []string
		lines  []string
		rest   string
	}{
		{"plain", []string{"a\nb\n"}, []string{"a", "b"}, ""},
		{"crlf", []string{"a\r\nb\r\n"}, []string{"a", "b"}, ""},
		{"split line", []string{"hel", "lo\nwor"}, []string{"hello"}, "wor"},
		{"openrc colours", []string{" \x1b[32;01m*\x1b[0m Starting sshd ... [ \x1b[32;01mok\x1b[0m ]\n"},
			[]string{" * Starting sshd ... [ ok ]"}, ""},
		{"escape split across chunks", []string{"x\x1b", "[3", "2mY\n"}, []string{"xY"}, ""},
		{"prompt without newline", []string{"Welcome\n\nlocalhost login: "}, []string{"Welcome", ""}, "localhost login: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c console
			var got []string
			for i, ch := range tt.chunks {
				for _, l := range c.write([]byte(ch), time.Duration(i)) {
					got = append(got, l.Text)
				}
			}
			if diff := cmp.Diff(tt.lines, got); diff != "" {
				t.Errorf("lines of %q (-want +got):\n%s", tt.chunks, diff)
			}
			if c.partial.String() != tt.rest {
				t.Errorf("partial line of %q = %q, want %q", tt.chunks, c.partial.String(), tt.rest)
			}
		})
	}
}

func TestFindPanic(t *testing.T) {
	tests := []struct{ in, want string }{
		{"ok\nall fine\n", ""},
		{"x\n[ 2.1] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100\nmore", "Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100"},
	}
	for _, tt := range tests {
		if got := findPanic(tt.in); got != tt.want {
			t.Errorf("findPanic(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestArgs(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // must appear, in this order, as a contiguous run
	}{
		{"x86 tcg", Config{Arch: "x86_64", Kernel: "k"}, []string{"-accel", "tcg", "-M", "pc"}},
		{"arm virt", Config{Arch: "aarch64", Kernel: "k"}, []string{"-accel", "tcg", "-M", "virt", "-cpu", "cortex-a57"}},
		{"cmdline", Config{Arch: "x86_64", Kernel: "k", Append: "quiet"}, []string{"-append", "console=ttyS0 panic=-1 quiet"}},
		{"arm console", Config{Arch: "aarch64", Kernel: "k"}, []string{"-append", "console=ttyAMA0 panic=-1"}},
		{"x86 cd", Config{Arch: "x86_64", Kernel: "k", Disks: []Disk{{ID: "cd", Path: "a.iso", Kind: CDROM}}},
			[]string{"-drive", "if=none,id=drv-cd,file=a.iso,format=raw,readonly=on,media=cdrom", "-device", "ide-cd,bus=ide.1,drive=drv-cd,id=cd"}},
		{"arm cd", Config{Arch: "aarch64", Kernel: "k", Disks: []Disk{{ID: "cd", Path: "a.iso", Kind: CDROM}}},
			[]string{"-device", "virtio-scsi-pci,id=scsi0", "-drive", "if=none,id=drv-cd,file=a.iso,format=raw,readonly=on,media=cdrom", "-device", "scsi-cd,bus=scsi0.0,drive=drv-cd,id=cd"}},
		{"virtio rw", Config{Arch: "x86_64", Kernel: "k", Disks: []Disk{{ID: "m", Path: "f.img"}}},
			[]string{"-drive", "if=none,id=drv-m,file=f.img,format=raw", "-device", "virtio-blk-pci,drive=drv-m,id=m"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Args(tt.cfg, "")
			if err != nil {
				t.Fatalf("Args(%+v) error: %v", tt.cfg, err)
			}
			if !strings.Contains("\x00"+strings.Join(got, "\x00")+"\x00", "\x00"+strings.Join(tt.want, "\x00")+"\x00") {
				t.Errorf("Args(%+v) = %q, want it to contain %q", tt.cfg, got, tt.want)
			}
		})
	}
	for _, bad := range []Config{{Arch: "riscv64", Kernel: "k"}, {Arch: "x86_64"}, {Arch: "x86_64", Kernel: "k", Disks: []Disk{{ID: "a,b", Path: "x"}}}} {
		if _, err := Args(bad, ""); err == nil {
			t.Errorf("Args(%+v) = nil error, want an error", bad)
		}
	}
}

// TestHarnessTinyInit boots a minimal Go init on each architecture to prove the harness itself:
// console markers, console input, a virtio disk, QMP hot-unplug and power-off.
func TestHarnessTinyInit(t *testing.T) {
	if testing.Short() {
		t.Skip("QEMU boot test skipped in -short mode")
	}
	root, err := testdata.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	kdir := os.Getenv("RAMBOOT_KERNEL_DIR")
	if kdir == "" {
		kdir = filepath.Join(root, "build", "kernel")
	}
	for _, arch := range []string{"x86_64", "aarch64"} {
		t.Run(arch, func(t *testing.T) {
			t.Parallel()
			missing := func(format string, args ...any) {
				t.Helper()
				msg := "prerequisite missing: " + fmt.Sprintf(format, args...)
				if os.Getenv("RAMBOOT_REQUIRE_QEMU") == "1" {
					t.Fatal(msg + " (RAMBOOT_REQUIRE_QEMU=1: QEMU tests must run)")
				}
				t.Skip(msg)
			}
			bin, _ := Binary(arch)
			if _, err := exec.LookPath(bin); err != nil {
				missing("%s not installed (scripts/install-deps.sh): %v", bin, err)
			}
			k, err := FindKernel(kdir, arch)
			if err != nil {
				missing("%v", err)
			}
			dir := t.TempDir()
			initrd := buildTinyInitramfs(t, root, k, dir)
			disk := filepath.Join(dir, "disk.img")
			if err := os.WriteFile(disk, make([]byte, 1<<20), 0o644); err != nil {
				t.Fatal(err)
			}
			slot, err := AcquireSlot(context.Background(), 2)
			if err != nil {
				t.Fatal(err)
			}
			defer slot()
			v, err := Start(Config{Arch: arch, Kernel: k.Image, Initrd: initrd, Append: "quiet",
				Disks: []Disk{{ID: "media", Path: disk}}, Timeout: 3 * time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			fail := func(format string, args ...any) {
				t.Helper()
				t.Fatalf(format+"\n%s", append(args, v.Tail(40))...)
			}
			if err := v.ExpectString(ctx, "TINYINIT type a line:"); err != nil {
				fail("%v", err)
			}
			if err := v.Write("hello-from-host\n"); err != nil {
				fail("%v", err)
			}
			if err := v.ExpectString(ctx, "TINYINIT echo=hello-from-host"); err != nil {
				fail("%v", err)
			}
			m, err := v.Expect(ctx, regexp.MustCompile(`TINYINIT vda sectors=(\d+)`))
			if err != nil {
				fail("%v", err)
			}
			if m[1] != "2048" {
				fail("vda sectors = %s, want 2048", m[1])
			}
			if err := v.ExpectString(ctx, "TINYINIT waiting for unplug"); err != nil {
				fail("%v", err)
			}
			if err := v.RemoveDisk(ctx, "media"); err != nil {
				fail("%v", err)
			}
			if err := v.ExpectString(ctx, "TINYINIT unplugged"); err != nil {
				fail("%v", err)
			}
			if err := v.Write("bye\n"); err != nil {
				fail("%v", err)
			}
			if err := v.Wait(ctx); err != nil {
				fail("%v", err)
			}
			if v.Seen("TINYINIT error") {
				fail("guest reported an error")
			}
			t.Logf("%s: tiny init booted, echoed, unplugged and powered off in %v", arch, v.Elapsed().Round(time.Millisecond))
		})
	}
}

// buildTinyInitramfs builds testdata/tinyinit for k.Arch and packs it with the virtio-blk modules.
func buildTinyInitramfs(t *testing.T, root string, k Kernel, dir string) string {
	t.Helper()
	goarch := map[string]string{"x86_64": "amd64", "aarch64": "arm64"}[k.Arch]
	initBin := filepath.Join(dir, "init")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", initBin, "./qemu-tests/vm/testdata/tinyinit")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOARCH="+goarch)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build tinyinit for %s: %v\n%s", k.Arch, err, out)
	}
	initData, err := os.ReadFile(initBin)
	if err != nil {
		t.Fatal(err)
	}
	recs := []cpio.Record{cpio.StaticFile("init", string(initData), 0o755)}
	var list []string
	for _, name := range []string{"virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_pci", "virtio_blk"} {
		rel, err := k.ModulePath(name)
		if err != nil {
			if name == "virtio" || name == "virtio_ring" {
				continue // built in on some kernels
			}
			t.Fatal(err)
		}
		data, err := os.ReadFile(filepath.Join(k.ModulesDir, rel))
		if err != nil {
			t.Fatal(err)
		}
		p := "modules/" + filepath.Base(rel)
		recs = append(recs, cpio.StaticFile(p, string(data), 0o644))
		list = append(list, "/"+p)
	}
	recs = append(recs, cpio.StaticFile("modules.list", strings.Join(list, "\n")+"\n", 0o644))
	var raw bytes.Buffer
	w := cpio.Newc.Writer(&raw)
	if err := cpio.WriteRecordsAndDirs(w, recs); err != nil {
		t.Fatal(err)
	}
	if err := cpio.WriteTrailer(w); err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw.Bytes())
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "initramfs.gz")
	if err := os.WriteFile(out, gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAcquireSlot(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir()) // private slot files
	ctx := context.Background()
	r1, err := AcquireSlot(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := AcquireSlot(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if r, err := AcquireSlot(short, 2); err == nil {
		r()
		t.Fatal("AcquireSlot(n=2) = a third slot while two are held, want a wait that times out")
	}
	r1()
	r3, err := AcquireSlot(ctx, 2)
	if err != nil {
		t.Fatalf("AcquireSlot(n=2) after a release = %v, want a slot", err)
	}
	r2()
	r3()
}
