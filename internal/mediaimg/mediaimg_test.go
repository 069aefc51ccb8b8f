package mediaimg_test

import (
	"bytes"
	"crypto/sha256"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	diskfs "github.com/diskfs/go-diskfs"

	"github.com/ramboot/ramboot/internal/apkinstall/index"
	"github.com/ramboot/ramboot/internal/apkinstall/signer"
	"github.com/ramboot/ramboot/internal/mediaimg"
	"github.com/ramboot/ramboot/internal/testdata"
)

// inputs writes a fake kernel and a gzip "initramfs" (contents are irrelevant to the layout).
func inputs(t *testing.T) (kernel, initrd string) {
	t.Helper()
	dir := t.TempDir()
	kernel = filepath.Join(dir, "vmlinuz")
	initrd = filepath.Join(dir, "initramfs.gz")
	os.WriteFile(kernel, bytes.Repeat([]byte("kernel"), 50000), 0o644)
	os.WriteFile(initrd, append([]byte{0x1f, 0x8b, 8, 0}, bytes.Repeat([]byte{7}, 100000)...), 0o644)
	return kernel, initrd
}

// readBack lists every file of an image through go-diskfs with its content hash.
func readBack(t *testing.T, img string) (map[string][32]byte, string) {
	t.Helper()
	d, err := diskfs.Open(img, diskfs.WithOpenMode(diskfs.ReadOnly))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	fsys, err := d.GetFilesystem(0)
	if err != nil {
		t.Fatalf("GetFilesystem(%s) = %v", img, err)
	}
	out := map[string][32]byte{}
	var walk func(dir string)
	walk = func(dir string) {
		ents, err := fsys.ReadDir(dir)
		if err != nil {
			t.Fatalf("ReadDir(%s) = %v", dir, err)
		}
		for _, e := range ents {
			if e.Name() == "." || e.Name() == ".." {
				continue
			}
			p := path.Join(dir, e.Name()) // go-diskfs reads fs.FS-style relative paths
			if e.IsDir() {
				walk(p)
				continue
			}
			data, err := fsys.ReadFile(p)
			if info, ierr := e.Info(); err != nil && ierr == nil && info.Size() == 0 {
				// go-diskfs's FAT reader cannot open an empty file without clusters, which is
				// how the FAT spec (and mkfs.fat/mtools/Linux) store them.
				data, err = nil, nil
			}
			if err != nil {
				t.Fatalf("ReadFile(%s) = %v", p, err)
			}
			out["/"+p] = sha256.Sum256(data)
		}
	}
	walk(".")
	return out, strings.TrimRight(fsys.Label(), " \x00")
}

func TestBuildLayout(t *testing.T) {
	kernel, initrd := inputs(t)
	repo := testdata.Path(t, "alpine", "v3.19", "x86_64")
	ovl := testdata.Path(t, "alpine", "apkovl", "rpi64-headless.apkovl.tar.gz")
	apks, _ := filepath.Glob(filepath.Join(repo, "*.apk"))
	want := map[string]string{ // medium path -> source file ("" = generated)
		"/boot/vmlinuz":                 "" + kernel,
		"/boot/initramfs":               initrd,
		"/boot/cmdline":                 "",
		"/boot/syslinux/syslinux.cfg":   "",
		"/apks/.boot_repository":        "",
		"/apks/x86_64/APKINDEX.tar.gz":  filepath.Join(repo, "APKINDEX.tar.gz"),
		"/rpi64-headless.apkovl.tar.gz": ovl,
	}
	for _, a := range apks {
		want["/apks/x86_64/"+filepath.Base(a)] = a
	}
	for _, format := range []string{"iso", "fat"} {
		t.Run(format, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "media."+format)
			var progress bytes.Buffer
			res, err := mediaimg.Build(out, mediaimg.Options{
				Format: format, Kernel: kernel, Initramfs: initrd, Repos: []string{repo}, Apkovls: []string{ovl},
				Cmdline: "console=ttyS0 quiet", KeysDir: testdata.Path(t, "alpine", "keys"), Progress: &progress,
			})
			if err != nil {
				t.Fatalf("Build(%s) = %v", format, err)
			}
			got, label := readBack(t, out)
			if label != "RAMBOOT" {
				t.Errorf("label = %q, want RAMBOOT", label)
			}
			// go-diskfs's own reader is only a partial judge: its ISO reader drops the leading dot
			// of ".boot_repository" (Linux and xorriso read the Rock Ridge name), and its FAT reader
			// returns wrong content for some long names that mtools and Linux read correctly. The
			// independent tools are the judge when installed.
			switch format {
			case "iso":
				delete(got, "/apks/boot_repository")
				compare(t, "go-diskfs", got, want, []string{"/apks/.boot_repository"}, true)
			case "fat":
				compare(t, "go-diskfs", got, want, nil, false)
			}
			if format == "fat" {
				fsckFAT(t, out)
			}
			if tool, files := extractWithTool(t, format, out); files != nil {
				compare(t, tool, files, want, nil, true)
				got = files
			}
			if got["/boot/cmdline"] != sha256.Sum256([]byte("console=ttyS0 quiet\n")) {
				t.Errorf("/boot/cmdline does not hold the command line")
			}
			if len(res.Files) != len(want) {
				t.Errorf("Build(%s) reports %d files, want %d", format, len(res.Files), len(want))
			}
			if !strings.Contains(progress.String(), "signed by alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub") {
				t.Errorf("progress does not report the verified index:\n%s", progress.String())
			}
			t.Logf("%s image: %d bytes for %d files", format, res.Size, len(res.Files))
		})
	}
}

// fsckFAT runs fsck.fat read-only over the image when dosfstools is installed: it must find no
// error (it only notes the unset free-cluster hint, which the FAT spec allows).
func fsckFAT(t *testing.T, img string) {
	t.Helper()
	fsck, err := exec.LookPath("fsck.fat")
	if err != nil {
		t.Logf("dosfstools not installed: FAT not checked with fsck.fat")
		return
	}
	out, err := exec.Command(fsck, "-n", img).CombinedOutput()
	text := strings.ReplaceAll(string(out), "Free cluster summary uninitialized", "")
	if err != nil || strings.Contains(text, "Fixing") || strings.Contains(text, "Bad") || strings.Contains(text, "Truncating") {
		t.Errorf("fsck.fat -n %s: %v\n%s", img, err, out)
	}
}

// compare checks that files (medium path -> content hash) holds exactly the want files (medium
// path -> source file, "" for generated content), ignoring the paths in skip.
func compare(t *testing.T, reader string, files map[string][32]byte, want map[string]string, skip []string, content bool) {
	t.Helper()
	var missing, extra []string
	for p, src := range want {
		if contains(skip, p) {
			continue
		}
		h, ok := files[p]
		if !ok {
			missing = append(missing, p)
			continue
		}
		if content && src != "" {
			data, _ := os.ReadFile(src)
			if h != sha256.Sum256(data) {
				t.Errorf("%s: %s content differs from %s", reader, p, src)
			}
		}
	}
	for p := range files {
		if _, ok := want[p]; !ok {
			extra = append(extra, p)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Errorf("read back by %s: missing %v, unexpected %v", reader, missing, extra)
	}
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

// extractWithTool extracts the whole image with xorriso (ISO, Rock Ridge names) or mtools (FAT,
// long names) when installed, and returns its files; nil when the tool is missing.
func extractWithTool(t *testing.T, format, img string) (string, map[string][32]byte) {
	t.Helper()
	dir := t.TempDir()
	var cmd *exec.Cmd
	switch format {
	case "iso":
		x, err := exec.LookPath("xorriso")
		if err != nil {
			t.Logf("xorriso not installed: ISO not cross-checked")
			return "", nil
		}
		cmd = exec.Command(x, "-osirrox", "on", "-indev", img, "-extract", "/", dir)
	case "fat":
		m, err := exec.LookPath("mcopy")
		if err != nil {
			t.Logf("mtools not installed: FAT not cross-checked")
			return "", nil
		}
		cmd = exec.Command(m, "-s", "-n", "-i", img, "::/apks", "::/boot", "::/rpi64-headless.apkovl.tar.gz", dir)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", cmd.Args, err, out)
	}
	files := map[string][32]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files["/"+filepath.ToSlash(rel)] = sha256.Sum256(data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return cmd.Args[0], files
}

func TestIsolinuxLayout(t *testing.T) {
	kernel, initrd := inputs(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "isolinux.bin")
	ld := filepath.Join(dir, "ldlinux.c32")
	os.WriteFile(bin, bytes.Repeat([]byte{0x90}, 4096), 0o644)
	os.WriteFile(ld, []byte("ldlinux"), 0o644)
	out := filepath.Join(dir, "boot.iso")
	if _, err := mediaimg.Build(out, mediaimg.Options{Format: "iso", Kernel: kernel, Initramfs: initrd, Isolinux: []string{bin, ld}}); err != nil {
		t.Fatal(err)
	}
	got, _ := readBack(t, out)
	for _, p := range []string{"/boot/syslinux/isolinux.bin", "/boot/syslinux/ldlinux.c32", "/boot/syslinux/isolinux.cfg"} {
		if _, ok := got[p]; !ok {
			t.Errorf("isolinux ISO lacks %s", p)
		}
	}
	// The El Torito boot record must be at sector 17, where BIOSes look for it.
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if vd := raw[17*2048 : 17*2048+32]; vd[0] != 0 || string(vd[1:6]) != "CD001" || !strings.HasPrefix(string(vd[7:]), "EL TORITO SPECIFICATION") {
		t.Errorf("sector 17 = %q, want the El Torito boot record", vd)
	}
	if _, err := mediaimg.Build(out, mediaimg.Options{Format: "fat", Kernel: kernel, Initramfs: initrd, Isolinux: []string{bin, ld}}); err == nil {
		t.Errorf("Build(fat with isolinux) = nil, want an error")
	}
}

func TestBuildErrors(t *testing.T) {
	kernel, initrd := inputs(t)
	dir := t.TempDir()
	// A repository whose index lists a package that is missing, and one with a swapped package.
	real := testdata.Path(t, "alpine", "v3.19", "x86_64")
	broken := filepath.Join(dir, "broken", "x86_64")
	swapped := filepath.Join(dir, "swapped", "x86_64")
	for _, d := range []string{broken, swapped} {
		os.MkdirAll(d, 0o755)
		var apks []string
		for _, f := range []string{"busybox-1.36.1-r15.apk", "musl-1.2.4_git20230717-r4.apk"} {
			b, err := os.ReadFile(filepath.Join(real, f))
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(d, f), b, 0o644)
			apks = append(apks, filepath.Join(d, f))
		}
		if _, err := index.WriteFile(filepath.Join(d, "APKINDEX.tar.gz"), apks, index.WriteOptions{RewriteArch: "x86_64"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	mb, _ := os.ReadFile(filepath.Join(real, "musl-1.2.4_git20230717-r4.apk"))
	os.WriteFile(filepath.Join(swapped, "busybox-1.36.1-r15.apk"), mb, 0o644)
	// A repository signed by a key the given keys directory does not trust.
	own := filepath.Join(dir, "own", "x86_64")
	os.MkdirAll(own, 0o755)
	priv, _, err := signer.GenerateKeyPair(filepath.Join(dir, "k"), 2048)
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := signer.LoadSigner(priv)
	if _, err := index.WriteFile(filepath.Join(own, "APKINDEX.tar.gz"), []string{filepath.Join(real, "musl-1.2.4_git20230717-r4.apk")},
		index.WriteOptions{Signer: signer, RewriteArch: "x86_64"}, nil); err != nil {
		t.Fatal(err)
	}
	badOvl := filepath.Join(dir, "host.tar.gz")
	os.WriteFile(badOvl, []byte{0x1f, 0x8b}, 0o644)
	notGz := filepath.Join(dir, "host.apkovl.tar.gz")
	os.WriteFile(notGz, []byte("plain"), 0o644)
	keys := testdata.Path(t, "alpine", "keys")

	base := mediaimg.Options{Format: "fat", Kernel: kernel, Initramfs: initrd}
	with := func(f func(*mediaimg.Options)) mediaimg.Options { o := base; f(&o); return o }
	tests := []struct {
		name string
		opts mediaimg.Options
		want string
	}{
		{"format", with(func(o *mediaimg.Options) { o.Format = "ext4" }), `format "ext4"`},
		{"no kernel", with(func(o *mediaimg.Options) { o.Kernel = filepath.Join(dir, "nokernel") }), "nokernel"},
		{"initramfs not gzip", with(func(o *mediaimg.Options) { o.Initramfs = kernel }), "not gzip"},
		{"fat label", with(func(o *mediaimg.Options) { o.Label = "MUCH-TOO-LONG-LABEL" }), "at most 11"},
		{"iso size", with(func(o *mediaimg.Options) { o.Format = "iso"; o.SizeMiB = 64 }), "FAT images only"},
		{"size too small", with(func(o *mediaimg.Options) { o.SizeMiB = 8 }), "at least"},
		{"size below content", with(func(o *mediaimg.Options) { o.SizeMiB = 34; o.Repos = []string{real, real, real} }), "content needs"},
		{"missing package", with(func(o *mediaimg.Options) {
			os.Remove(filepath.Join(broken, "musl-1.2.4_git20230717-r4.apk"))
			o.Repos = []string{filepath.Dir(broken)}
		}), "musl-1.2.4_git20230717-r4.apk"},
		{"swapped package", with(func(o *mediaimg.Options) { o.Repos = []string{swapped} }), "busybox-1.36.1-r15.apk has identity"},
		{"untrusted index", with(func(o *mediaimg.Options) { o.Repos = []string{own}; o.KeysDir = keys }), "UNTRUSTED"},
		{"no index", with(func(o *mediaimg.Options) { o.Repos = []string{dir} }), "no APKINDEX.tar.gz"},
		{"apkovl name", with(func(o *mediaimg.Options) { o.Apkovls = []string{badOvl} }), "*.apkovl.tar.gz"},
		{"apkovl not gzip", with(func(o *mediaimg.Options) { o.Apkovls = []string{notGz} }), "not gzip"},
	}
	for _, tt := range tests {
		out := filepath.Join(dir, "out.img")
		_, err := mediaimg.Build(out, tt.opts)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Build = %v, want an error containing %q", tt.name, err, tt.want)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%s: Build left %s behind", tt.name, out)
			os.Remove(out)
		}
		if leftovers, _ := filepath.Glob(filepath.Join(dir, ".out.img*")); len(leftovers) > 0 {
			t.Errorf("%s: Build left temporary files %v", tt.name, leftovers)
		}
	}
}
