package overlay

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ramboot/ramboot/internal/testdata"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("prerequisite missing: root (chown/mknod/chroot during restore)")
	}
}

// snapshot describes every entry under root: type, mode, owner, content hash or link target,
// and mtime for regular files (what busybox tar restores).
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := info.Sys().(*syscall.Stat_t)
		desc := fmt.Sprintf("%s %04o %d:%d", info.Mode().Type(), st.Mode&07777, st.Uid, st.Gid)
		switch {
		case info.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" %x %d", sha256.Sum256(b), info.ModTime().Unix())
		case info.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			desc += " -> " + l
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// mkinitfs's passwd and group: the tables busybox tar maps owner names through at boot.
const (
	initramfsPasswd = "root:x:0:0:root:/root:/bin/sh\nlp:x:4:7:lp:/var/spool/lpd:/sbin/nologin\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n"
	initramfsGroup  = "root:x:0:root\ntty:x:5:\ndisk:x:6:root\nlp:x:7:lp\nkmem:x:9:\nwheel:x:10:root\nfloppy:x:11:root\nconsole:x:17:\naudio:x:18:\ncdrom:x:19:\ndialout:x:20:root\ninput:x:23:\ntape:x:26:root\nvideo:x:27:root\nnetdev:x:28:\nkvm:x:34:kvm\nshadow:x:42:\nping:x:999:\nnogroup:x:65533:\nnobody:x:65534:\n"
)

// The real overlays restore to the same tree Alpine's busybox tar produces (run from the
// official minirootfs in a chroot, with the initramfs's passwd/group), except for what safety
// refuses, which must be reported.
func TestRestoreRealOverlaysMatchBusybox(t *testing.T) {
	needRoot(t)
	ovls, err := filepath.Glob(testdata.Path(t, "alpine", "apkovl", "*.apkovl.tar.gz"))
	if err != nil || len(ovls) == 0 {
		t.Fatalf("no real overlays found: %v", err)
	}
	mrf := testdata.Minirootfs(t)
	os.WriteFile(filepath.Join(mrf, "etc/passwd"), []byte(initramfsPasswd), 0644)
	os.WriteFile(filepath.Join(mrf, "etc/group"), []byte(initramfsGroup), 0644)
	for _, ovl := range ovls {
		t.Run(filepath.Base(ovl), func(t *testing.T) {
			data, err := os.ReadFile(ovl)
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(mrf, "ovl.tar.gz"), data, 0644)
			bbRoot := filepath.Join(mrf, "bb")
			os.RemoveAll(bbRoot)
			os.Mkdir(bbRoot, 0755)
			if b, err := exec.Command("chroot", mrf, "/bin/busybox", "tar", "-C", "/bb", "-zxf", "/ovl.tar.gz").CombinedOutput(); err != nil {
				t.Fatalf("busybox tar: %v: %s", err, b)
			}
			os.Chmod(filepath.Join(bbRoot, "root"), 0700) // Alpine's post-unpack fix (no-op here)

			ours := t.TempDir()
			os.Chmod(ours, 0755)
			res, err := Restore(ovl, ours, RestoreOptions{Arch: "aarch64"})
			if err != nil {
				t.Fatalf("Restore(%s) error: %v", ovl, err)
			}
			want, got := snapshot(t, bbRoot), snapshot(t, ours)
			// The arch fix is Alpine's initramfs step after tar, not tar's: apply it to the reference.
			if _, ok := want["etc/apk/arch"]; ok {
				p := filepath.Join(bbRoot, "etc/apk/arch")
				os.WriteFile(p, []byte("aarch64\n"), 0644)
				// Rewriting sets the current time, in both trees.
				info, _ := os.Stat(filepath.Join(ours, "etc/apk/arch"))
				os.Chtimes(p, info.ModTime(), info.ModTime())
				want = snapshot(t, bbRoot)
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("Restore(%s) tree differs from busybox tar (-busybox +ours):\n%s", filepath.Base(ovl), d)
			}
			// Root directory metadata: busybox applies "./" (owner 1000) to the root itself; we
			// refuse that and must say so.
			var tarRootEntry bool
			Walk(ovl, RestoreOptions{}, func(h *tar.Header, _ io.Reader) error {
				if h.Name == "./" {
					tarRootEntry = true
				}
				return nil
			})
			if tarRootEntry && (len(res.Refused) != 1 || !strings.HasPrefix(res.Refused[0], "./: ")) {
				t.Errorf("Restore(%s).Refused = %q, want one line about ./", filepath.Base(ovl), res.Refused)
			}
			if !tarRootEntry && len(res.Refused) != 0 {
				t.Errorf("Restore(%s).Refused = %q, want none", filepath.Base(ovl), res.Refused)
			}
			// Placed is exactly the tree (minus implicitly created parents, of which there are none here).
			var keys []string
			for k := range got {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			placed := append([]string(nil), res.Placed...)
			sort.Strings(placed)
			if d := cmp.Diff(keys, placed); d != "" {
				t.Errorf("Restore(%s).Placed (-tree +placed):\n%s", filepath.Base(ovl), d)
			}
		})
	}
}

type entry struct {
	hdr  tar.Header
	body string
}

func makeTarGz(t *testing.T, entries []entry) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		h := e.hdr
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if h.Mode == 0 {
			h.Mode = 0644
		}
		if h.ModTime.IsZero() {
			h.ModTime = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(e.body))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	return b.Bytes()
}

func file(name, body string) entry {
	return entry{tar.Header{Name: name, Typeflag: tar.TypeReg}, body}
}

func TestRestoreSafety(t *testing.T) {
	needRoot(t)
	tests := []struct {
		name        string
		entries     []entry
		wantRefused []string // prefixes
		wantPlaced  []string
		outside     string // a file that must not exist outside the root afterwards
	}{
		{"dotdot", []entry{file("../escape", "x"), file("etc/../../escape2", "x"), file("etc/ok", "y")},
			[]string{"../escape: ", "etc/../../escape2: "}, []string{"etc/ok"}, "escape"},
		{"absolute is made relative", []entry{file("/etc/abs", "x")}, nil, []string{"etc/abs"}, ""},
		{"symlinked parent", []entry{
			{tar.Header{Name: "etc/evil", Typeflag: tar.TypeSymlink, Linkname: "../../outside"}, ""},
			file("etc/evil/passwd", "pwned"),
		}, []string{"etc/evil/passwd: parent etc/evil is a symlink"}, []string{"etc/evil"}, "outside/passwd"},
		{"hardlink outside", []entry{
			{tar.Header{Name: "etc/shadow", Typeflag: tar.TypeLink, Linkname: "../../outside/secret"}, ""},
			{tar.Header{Name: "etc/shadow2", Typeflag: tar.TypeLink, Linkname: "etc/notplaced"}, ""},
		}, []string{"etc/shadow: hardlink target", "etc/shadow2: hardlink to"}, nil, ""},
		{"hardlink inside", []entry{file("etc/a", "A"),
			{tar.Header{Name: "etc/b", Typeflag: tar.TypeLink, Linkname: "etc/a"}, ""},
		}, nil, []string{"etc/a", "etc/b"}, ""},
		{"devices and fifos", []entry{
			{tar.Header{Name: "dev/sda", Typeflag: tar.TypeBlock, Devmajor: 8}, ""},
			{tar.Header{Name: "dev/mem", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 1}, ""},
			{tar.Header{Name: "run/fifo", Typeflag: tar.TypeFifo}, ""},
		}, []string{"dev/sda: device node", "dev/mem: device node", "run/fifo: FIFO"}, nil, ""},
		{"macOS and ./ prefix", []entry{file("./etc/._hosts", "apple"), file("./etc/hosts", "h")},
			nil, []string{"etc/._hosts", "etc/hosts"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			root := filepath.Join(base, "a", "root")
			os.MkdirAll(root, 0755)
			os.MkdirAll(filepath.Join(base, "outside"), 0755)
			os.WriteFile(filepath.Join(base, "outside", "secret"), []byte("s"), 0600)
			ovl := filepath.Join(base, "t.apkovl.tar.gz")
			os.WriteFile(ovl, makeTarGz(t, tc.entries), 0644)
			res, err := Restore(ovl, root, RestoreOptions{})
			if err != nil {
				t.Fatalf("Restore() error: %v", err)
			}
			if len(res.Refused) != len(tc.wantRefused) {
				t.Errorf("Restore().Refused = %q, want %d entries starting %q", res.Refused, len(tc.wantRefused), tc.wantRefused)
			} else {
				for i, w := range tc.wantRefused {
					if !strings.HasPrefix(res.Refused[i], w) {
						t.Errorf("Restore().Refused[%d] = %q, want prefix %q", i, res.Refused[i], w)
					}
				}
			}
			if d := cmp.Diff(tc.wantPlaced, res.Placed); d != "" {
				t.Errorf("Restore().Placed (-want +got):\n%s", d)
			}
			for _, p := range []string{"escape", "escape2", "a/escape", "outside/passwd"} {
				if _, err := os.Lstat(filepath.Join(base, p)); err == nil {
					t.Errorf("Restore() wrote %s outside the root", p)
				}
			}
			if b, _ := os.ReadFile(filepath.Join(base, "outside", "secret")); string(b) != "s" {
				t.Errorf("outside/secret = %q after Restore, want unchanged", b)
			}
		})
	}
}

func TestRestoreMetadataAndFixups(t *testing.T) {
	needRoot(t)
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0755)
	os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0::/root:/bin/sh\nalice:x:1234:1234::/home/alice:/bin/sh\n"), 0644)
	os.WriteFile(filepath.Join(root, "etc/group"), []byte("root:x:0:\nalice:x:4321:\n"), 0644)
	os.WriteFile(filepath.Join(root, "etc/motd"), []byte("old"), 0644)
	mt := time.Date(2020, 2, 3, 4, 5, 6, 0, time.UTC)
	ovl := filepath.Join(t.TempDir(), "h.apkovl.tar.gz")
	os.WriteFile(ovl, makeTarGz(t, []entry{
		{tar.Header{Name: "home/alice/.profile", Typeflag: tar.TypeReg, Mode: 0600, Uid: 1, Gid: 1, Uname: "alice", Gname: "alice", ModTime: mt}, "p"},
		{tar.Header{Name: "home/bob/x", Typeflag: tar.TypeReg, Mode: 04755, Uid: 777, Gid: 778, Uname: "bob", Gname: "bob", ModTime: mt}, "b"},
		{tar.Header{Name: "root/.ssh/authorized_keys", Typeflag: tar.TypeReg, Mode: 0600, ModTime: mt}, "k"},
		{tar.Header{Name: "etc/motd", Typeflag: tar.TypeReg, Mode: 0640, ModTime: mt}, "new"},
		{tar.Header{Name: "etc/apk/arch", Typeflag: tar.TypeReg, Mode: 0644, ModTime: mt}, "armhf\n"},
		{tar.Header{Name: "etc/empty/", Typeflag: tar.TypeDir, Mode: 0710, ModTime: mt}, ""},
	}), 0644)
	if _, err := Restore(ovl, root, RestoreOptions{Arch: "x86_64"}); err != nil {
		t.Fatalf("Restore() error: %v", err)
	}
	s := snapshot(t, root)
	want := map[string]string{
		"home":                      "d--------- 0755 0:0", // implicit parent: 0755 root like busybox
		"home/alice":                "d--------- 0755 0:0",
		"home/alice/.profile":       fmt.Sprintf("---------- 0600 1234:4321 %x %d", sha256.Sum256([]byte("p")), mt.Unix()),
		"home/bob":                  "d--------- 0755 0:0",
		"home/bob/x":                fmt.Sprintf("---------- 4755 777:778 %x %d", sha256.Sum256([]byte("b")), mt.Unix()),
		"root":                      "d--------- 0700 0:0", // chmod 700 /root
		"root/.ssh":                 "d--------- 0755 0:0",
		"root/.ssh/authorized_keys": fmt.Sprintf("---------- 0600 0:0 %x %d", sha256.Sum256([]byte("k")), mt.Unix()),
		"etc/motd":                  fmt.Sprintf("---------- 0640 0:0 %x %d", sha256.Sum256([]byte("new")), mt.Unix()),
		"etc/empty":                 "d--------- 0710 0:0",
	}
	for k, w := range want {
		got := strings.Replace(s[k], "d--------- ", "d--------- ", 1)
		if strings.HasPrefix(got, "d") {
			got = "d--------- " + strings.SplitN(got, " ", 2)[1]
		}
		if got != w {
			t.Errorf("after Restore %s = %q, want %q", k, s[k], w)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc/apk/arch")); string(b) != "x86_64\n" {
		t.Errorf("etc/apk/arch = %q, want %q", b, "x86_64\n")
	}
	if info, _ := os.Stat(filepath.Join(root, "etc/empty")); !info.ModTime().Equal(mt) {
		t.Errorf("etc/empty mtime = %v, want %v", info.ModTime(), mt)
	}
}

// A wrong password, a corrupt or truncated archive, or an archive over the size bound must
// extract nothing at all.
func TestRestoreAllOrNothing(t *testing.T) {
	good := makeTarGz(t, []entry{file("etc/a", "a"), file("etc/big", strings.Repeat("z", 100000))})
	var enc bytes.Buffer
	if err := Encrypt(&enc, good, "aes-256-cbc", []byte("right"), rand.Reader); err != nil {
		t.Fatal(err)
	}
	corrupt := append([]byte(nil), good...)
	corrupt[len(corrupt)-6] ^= 0xff // CRC trailer
	tests := []struct {
		name, file string
		data       []byte
		opts       RestoreOptions
		wantErr    string
	}{
		{"truncated", "h.apkovl.tar.gz", good[:len(good)/2], RestoreOptions{}, "apkovl"},
		{"bad crc", "h.apkovl.tar.gz", corrupt, RestoreOptions{}, "gzip"},
		{"too big", "h.apkovl.tar.gz", good, RestoreOptions{MaxBytes: 50000}, "exceeds the limit"},
		{"wrong password", "h.apkovl.tar.gz.aes-256-cbc", enc.Bytes(), RestoreOptions{
			Password: func(string) ([]byte, error) { return []byte("wrong"), nil }}, "bad decrypt"},
		{"no password source", "h.apkovl.tar.gz.aes-256-cbc", enc.Bytes(), RestoreOptions{}, "no key file and no console prompt"},
		{"unsupported cipher", "h.apkovl.tar.gz.bf-cbc", enc.Bytes(), RestoreOptions{}, "not supported"},
		{"encrypted without suffix", "h.apkovl.tar.gz", enc.Bytes(), RestoreOptions{}, "no cipher suffix"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ovl := filepath.Join(dir, tc.file)
			os.WriteFile(ovl, tc.data, 0644)
			root := filepath.Join(dir, "root")
			os.Mkdir(root, 0755)
			_, err := Restore(ovl, root, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Restore(%s) error = %v, want containing %q", tc.name, err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), ovl) {
				t.Errorf("Restore(%s) error %q does not name the file", tc.name, err)
			}
			if ents, _ := os.ReadDir(root); len(ents) != 0 {
				t.Errorf("Restore(%s) left %d entries in the root, want none", tc.name, len(ents))
			}
		})
	}
}

func TestRestoreEncrypted(t *testing.T) {
	needRoot(t)
	plain := makeTarGz(t, []entry{file("etc/hostname", "box\n")})
	var enc bytes.Buffer
	if err := Encrypt(&enc, plain, "aes-256-cbc", []byte("right"), rand.Reader); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ovl := filepath.Join(dir, "box.apkovl.tar.gz.aes-256-cbc")
	os.WriteFile(ovl, enc.Bytes(), 0644)
	key := filepath.Join(dir, "key")
	os.WriteFile(key, []byte("right\nignored second line\n"), 0600)
	badKey := filepath.Join(dir, "badkey")
	os.WriteFile(badKey, []byte("nope\n"), 0600)

	var prompts int
	tests := []struct {
		name    string
		opts    RestoreOptions
		prompts int
	}{
		{"key file", RestoreOptions{KeyFile: key}, 0},
		{"third prompt", RestoreOptions{Password: func(string) ([]byte, error) {
			prompts++
			if prompts == 3 {
				return []byte("right"), nil
			}
			return []byte("wrong"), nil
		}}, 3},
		{"bad key file then prompt", RestoreOptions{KeyFile: badKey, Password: func(string) ([]byte, error) {
			prompts++
			return []byte("right"), nil
		}}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prompts = 0
			root := t.TempDir()
			res, err := Restore(ovl, root, tc.opts)
			if err != nil {
				t.Fatalf("Restore() error: %v", err)
			}
			if b, _ := os.ReadFile(filepath.Join(root, "etc/hostname")); string(b) != "box\n" || res.Digest != DigestSHA256 {
				t.Errorf("Restore() etc/hostname = %q digest %s, want %q sha256", b, res.Digest, "box\n")
			}
			if prompts != tc.prompts {
				t.Errorf("Restore() prompted %d times, want %d", prompts, tc.prompts)
			}
		})
	}
}

// Overlays made by the real `openssl enc -md md5` (pre-1.1 OpenSSL / LibreSSL era Alpine)
// restore through the MD5 fallback.
func TestRestoreLegacyMD5Overlay(t *testing.T) {
	needRoot(t)
	ossl := needOpenSSL(t)
	dir := t.TempDir()
	plainPath := filepath.Join(dir, "plain.tar.gz")
	os.WriteFile(plainPath, makeTarGz(t, []entry{file("etc/motd", "legacy\n")}), 0644)
	ovl := filepath.Join(dir, "old.apkovl.tar.gz.aes-256-cbc")
	if b, err := exec.Command(ossl, "enc", "-aes-256-cbc", "-md", "md5", "-salt", "-pass", "pass:pw", "-in", plainPath, "-out", ovl).CombinedOutput(); err != nil {
		t.Fatalf("openssl: %v: %s", err, b)
	}
	root := t.TempDir()
	res, err := Restore(ovl, root, RestoreOptions{Password: func(string) ([]byte, error) { return []byte("pw"), nil }})
	if err != nil {
		t.Fatalf("Restore(md5 overlay) error: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc/motd")); string(b) != "legacy\n" || res.Digest != DigestMD5 {
		t.Errorf("Restore(md5 overlay) etc/motd = %q digest %s, want %q md5", b, res.Digest, "legacy\n")
	}
}

func TestConsolePromptTimeout(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	var out bytes.Buffer
	start := time.Now()
	_, err = ConsolePrompt(r, &out, 200*time.Millisecond)("Password: ")
	if err == nil || !strings.Contains(err.Error(), "no password typed") {
		t.Errorf("ConsolePrompt() with nobody typing error = %v, want a timeout error", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("ConsolePrompt() took %v, want about 200ms", d)
	}
	// A typed line is returned without its newline.
	r2, w2, _ := os.Pipe()
	defer r2.Close()
	w2.Write([]byte("hunter2\r\nrest"))
	got, err := ConsolePrompt(r2, &out, 2*time.Second)("Password: ")
	w2.Close()
	if err != nil || string(got) != "hunter2" {
		t.Errorf("ConsolePrompt() = %q, %v, want %q, nil", got, err, "hunter2")
	}
	if !strings.Contains(out.String(), "Password: ") {
		t.Errorf("ConsolePrompt() output %q lacks the prompt", out.String())
	}
}

func BenchmarkRestoreRealOverlay(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("prerequisite missing: root")
	}
	ovl := testdata.Path(b, "alpine", "apkovl", "multipi4-localhost.apkovl.tar.gz")
	for i := 0; i < b.N; i++ {
		root := b.TempDir()
		if _, err := Restore(ovl, root, RestoreOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
