package mediaimg_test

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ramboot/ramboot/internal/initramfs"
	"github.com/ramboot/ramboot/internal/mediaimg"
	"github.com/ramboot/ramboot/internal/testdata"
)

// TestISOBIOSBoot boots an isolinux ISO in QEMU (SeaBIOS, IDE CD, no -kernel): isolinux must load
// the kernel with the recorded command line and the initramfs, and the kernel must find /init.
// The /init is a stub, so the kernel panics right after; panic=-1 ends the VM.
func TestISOBIOSBoot(t *testing.T) {
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skipf("prerequisite missing: qemu-system-x86_64: %v", err)
	}
	iso := []string{"/usr/lib/ISOLINUX/isolinux.bin", "/usr/lib/syslinux/modules/bios/ldlinux.c32"}
	for _, f := range iso {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("prerequisite missing: %s (Debian packages isolinux, syslinux-common): %v", f, err)
		}
	}
	root, err := testdata.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	kernel := filepath.Join(root, "build", "kernel", "x86_64", "vmlinuz")
	if kd := os.Getenv("KERNEL_DIR"); kd != "" {
		kernel = filepath.Join(kd, "x86_64", "vmlinuz")
	}
	if _, err := os.Stat(kernel); err != nil {
		t.Skipf("prerequisite missing: kernel (run scripts/fetch-kernel.sh x86_64): %v", err)
	}
	dir := t.TempDir()
	// A stub /init: an ELF header is enough for the image; the kernel fails to execute it.
	var hdr bytes.Buffer
	h := elf.Header64{Type: uint16(elf.ET_EXEC), Machine: uint16(elf.EM_X86_64), Version: 1, Ehsize: 64}
	copy(h.Ident[:], elf.ELFMAG)
	h.Ident[elf.EI_CLASS], h.Ident[elf.EI_DATA], h.Ident[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), 1
	binary.Write(&hdr, binary.LittleEndian, h)
	stub := filepath.Join(dir, "init")
	os.WriteFile(stub, hdr.Bytes(), 0o755)
	initrd := filepath.Join(dir, "initramfs")
	if _, err := initramfs.BuildFile(initrd, initramfs.Options{Init: stub, Arch: "x86_64"}); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "boot.iso")
	const marker = "ramboot.isotest=7f3a"
	if _, err := mediaimg.Build(img, mediaimg.Options{Format: "iso", Kernel: kernel, Initramfs: initrd, Isolinux: iso,
		Cmdline: "console=ttyS0 panic=-1 " + marker}); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu, "-accel", "tcg", "-m", "256", "-nodefaults", "-no-user-config",
		"-display", "none", "-serial", "stdio", "-no-reboot", "-cdrom", img, "-boot", "d")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	want := []string{"ISOLINUX", "Command line: BOOT_IMAGE=/boot/vmlinuz", marker, "Run /init as init process"}
	seen := map[string]bool{}
	var log strings.Builder
	sc := bufio.NewScanner(out)
	for sc.Scan() && len(seen) < len(want) {
		line := sc.Text()
		log.WriteString(line + "\n")
		for _, w := range want {
			if strings.Contains(line, w) {
				seen[w] = true
			}
		}
	}
	for _, w := range want {
		if !seen[w] {
			t.Errorf("serial console never showed %q (timeout or boot failure); console:\n%s", w, log.String())
		}
	}
}
