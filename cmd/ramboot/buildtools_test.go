package main

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ramboot/ramboot/internal/apkarch"
	"github.com/ramboot/ramboot/internal/apkinstall/index"
	"github.com/ramboot/ramboot/internal/apkinstall/sign"
	"github.com/ramboot/ramboot/internal/testdata"
)

// TestBuildToolsCLI drives keygen → index → initramfs → media through the command line.
func TestBuildToolsCLI(t *testing.T) {
	real := testdata.Path(t, "alpine", "v3.19", "x86_64")
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo", "x86_64")
	os.MkdirAll(repo, 0o755)
	var apks []string
	for _, p := range []string{"busybox-1.36.1-r15.apk", "musl-1.2.4_git20230717-r4.apk", "alpine-baselayout-data-3.4.3-r2.apk"} {
		b, err := os.ReadFile(filepath.Join(real, p))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(repo, p), b, 0o644)
		apks = append(apks, filepath.Join(repo, p))
	}
	key := filepath.Join(dir, "keys", "builder")
	os.MkdirAll(filepath.Dir(key), 0o755)
	steps := [][]string{
		{"keygen", "--out", key, "--bits", "2048"},
		append([]string{"index", "--out", filepath.Join(repo, "APKINDEX.tar.gz"), "--sign", key + ".rsa", "--description", "cli test", "--quiet"}, apks...),
	}
	for _, s := range steps {
		if code := run(append([]string{"ramboot"}, s...)); code != 0 {
			t.Fatalf("ramboot %s = exit %d, want 0", strings.Join(s, " "), code)
		}
	}
	// The index must verify with the generated public key only, and list noarch packages under
	// the directory's arch (alpine-baselayout-data is noarch).
	pubDir := filepath.Join(dir, "pub")
	os.MkdirAll(pubDir, 0o755)
	pub, _ := os.ReadFile(key + ".rsa.pub")
	os.WriteFile(filepath.Join(pubDir, "builder.rsa.pub"), pub, 0o644)
	keys, err := sign.LoadKeyRing(pubDir)
	if err != nil {
		t.Fatal(err)
	}
	ix, err := index.Load(filepath.Join(repo, "APKINDEX.tar.gz"), keys, false)
	if err != nil {
		t.Fatalf("index.Load(CLI index) = %v", err)
	}
	if n := strings.Count(string(ix.Text), "\nP:"); n != 3 || strings.Contains(string(ix.Text), "A:noarch") {
		t.Errorf("CLI index has %d records (want 3), noarch rewritten: %v", n, !strings.Contains(string(ix.Text), "A:noarch"))
	}

	// initramfs with a static stub standing in for the init (an ELF header of the host arch).
	stub := filepath.Join(dir, "init")
	if err := os.WriteFile(stub, stubELF(t), 0o755); err != nil {
		t.Fatal(err)
	}
	initrd := filepath.Join(dir, "initramfs")
	if code := run([]string{"ramboot", "initramfs", "--out", initrd, "--init", stub, "--keys-dir", pubDir}); code != 0 {
		t.Fatalf("ramboot initramfs = exit %d, want 0", code)
	}
	kernel := filepath.Join(dir, "vmlinuz")
	os.WriteFile(kernel, []byte("not really a kernel"), 0o644)
	for _, format := range []string{"iso", "fat"} {
		out := filepath.Join(dir, "media."+format)
		code := run([]string{"ramboot", "media", "--out", out, "--format", format, "--kernel", kernel, "--initramfs", initrd,
			"--repo", filepath.Dir(repo), "--keys-dir", pubDir, "--cmdline", "console=ttyS0", "--label", "RBTEST"})
		if code != 0 {
			t.Fatalf("ramboot media --format %s = exit %d, want 0", format, code)
		}
		if st, err := os.Stat(out); err != nil || st.Size() < 256<<10 { // busybox alone is ~500 KiB
			t.Errorf("media %s: %v", out, err)
		}
	}
}

// stubELF is a minimal static ELF executable header for the host arch.
func stubELF(t *testing.T) []byte {
	t.Helper()
	m := map[string]elf.Machine{"x86_64": elf.EM_X86_64, "aarch64": elf.EM_AARCH64}[apkarch.Runtime()]
	h := elf.Header64{Type: uint16(elf.ET_EXEC), Machine: uint16(m), Version: 1, Ehsize: 64}
	copy(h.Ident[:], elf.ELFMAG)
	h.Ident[elf.EI_CLASS], h.Ident[elf.EI_DATA], h.Ident[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), 1
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, h)
	return b.Bytes()
}

func TestBuildToolsCLIErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		args []string
		code int
	}{
		{[]string{"keygen"}, 2},
		{[]string{"keygen", "--out", filepath.Join(dir, "k"), "--bits", "256"}, 1},
		{[]string{"index", "--out", filepath.Join(dir, "i.tar.gz")}, 2},
		{[]string{"index", "--out", filepath.Join(dir, "x86_64", "i.tar.gz"), filepath.Join(dir, "missing.apk")}, 1},
		{[]string{"initramfs", "--out", filepath.Join(dir, "i")}, 2},
		{[]string{"initramfs", "--out", filepath.Join(dir, "i"), "--init", filepath.Join(dir, "noinit")}, 1},
		{[]string{"media", "--out", filepath.Join(dir, "m"), "--format", "iso"}, 2},
		{[]string{"media", "--out", filepath.Join(dir, "m"), "--format", "udf", "--kernel", "k", "--initramfs", "i"}, 1},
		{[]string{"index", "--bogus-flag"}, 2},
	}
	for _, tt := range tests {
		if code := run(append([]string{"ramboot"}, tt.args...)); code != tt.code {
			t.Errorf("ramboot %s = exit %d, want %d", strings.Join(tt.args, " "), code, tt.code)
		}
	}
}
