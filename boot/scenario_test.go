package boot

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/ramboot/ramboot/internal/coldplug"
	"github.com/ramboot/ramboot/overlay"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const testRelease = "6.1.0-test-amd64"

// fakeIndex is a tiny module index: deps and alias globs.
type fakeIndex struct {
	dir     string
	deps    map[string][]string // module → dependencies (loaded first)
	aliases map[string]string   // glob → module
	builtin map[string]bool
}

func (ix *fakeIndex) Dir() string { return ix.dir }

func (ix *fakeIndex) Resolve(name string) ([]string, error) {
	if ix.builtin[name] {
		return nil, nil
	}
	deps, ok := ix.deps[name]
	if !ok {
		return nil, fmt.Errorf("%s: module not found", name)
	}
	var out []string
	for _, d := range append(append([]string(nil), deps...), name) {
		out = append(out, "kernel/"+d+".ko")
	}
	return out, nil
}

func (ix *fakeIndex) MatchAlias(a string) []string {
	var out []string
	for glob, m := range ix.aliases {
		if ok, _ := filepath.Match(glob, a); ok {
			out = append(out, m)
		}
	}
	sort.Strings(out)
	return out
}

func newFakeIndex(dir string) *fakeIndex {
	return &fakeIndex{
		dir: dir,
		deps: map[string][]string{
			"virtio_pci": {"virtio_ring", "virtio"}, "virtio_blk": {"virtio_ring", "virtio"},
			"pcspkr": nil, "vfat": {"fat"}, "nls_cp437": nil, "nls_ascii": nil, "isofs": {"cdrom"},
			"squashfs": nil, "e1000": nil,
		},
		aliases: map[string]string{"pci:v00001AF4d*": "virtio_pci", "virtio:d00000002v*": "virtio_blk",
			"platform:pcspkr": "pcspkr", "pci:v00008086d0000100Esv*": "e1000", "fs-vfat": "vfat"},
		builtin: map[string]bool{"loop": true, "ext4": true},
	}
}

// tarGz builds a gzipped tar of files (name → content; a trailing "/" makes a directory).
func tarGz(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		hdr := &tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg, ModTime: time.Unix(1700000000, 0)}
		if strings.HasSuffix(n, "/") {
			hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeDir, 0o755, 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Size > 0 {
			tw.Write([]byte(files[n]))
		}
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

type fakeMedium struct {
	dev, fstype, label string
	files              map[string][]byte // relative path → content
	mtimes             map[string]time.Time
}

type scenario struct {
	name        string
	cmdline     string
	media       []fakeMedium
	failPkgs    []string          // the fake installer reports these as failed
	noInit      bool              // the fake installer leaves no /sbin/init
	shell       bool              // the initramfs has busybox
	initramfsRT bool              // the fake initramfs contains a resolv.conf
	files       map[string][]byte // extra files in the fake initramfs (e.g. what a recorded mount would show)
	recFail     map[string]error  // recorded actions that fail (by line prefix)
	noAnswer    bool              // nobody asks for the rescue shell
}

type harness struct {
	root     string
	rec      *Recorder
	env      *Env
	installs []InstallRequest
	kmsg     *os.File
}

// alpineInittab is the start of Alpine 3.19's /etc/inittab (alpine-baselayout).
const alpineInittab = `# /etc/inittab

::sysinit:/sbin/openrc sysinit
::sysinit:/sbin/openrc boot
::wait:/sbin/openrc default

# Set up a couple of getty's
tty1::respawn:/sbin/getty 38400 tty1
tty2::respawn:/sbin/getty 38400 tty2

# Put a getty on the serial port
#ttyS0::respawn:/sbin/getty -L 115200 ttyS0 vt100
`

func writeTree(t *testing.T, root string, files map[string][]byte, mtimes map[string]time.Time) {
	t.Helper()
	for rel, data := range files {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if mt, ok := mtimes[rel]; ok {
			os.Chtimes(p, mt, mt)
		}
	}
}

func newHarness(t *testing.T, sc scenario) *harness {
	t.Helper()
	root := t.TempDir()
	h := &harness{root: root, rec: NewRecorder()}
	h.rec.Strip = root
	writeTree(t, root, map[string][]byte{
		"proc/cmdline": []byte(sc.cmdline + "\n"),
		"etc/apk/keys/alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub": []byte("-----BEGIN PUBLIC KEY-----\n"),
		"etc/modules": []byte("# boot modules\nsquashfs\n"),
		"sys/bus/pci/devices/0000:00:04.0/modalias":   []byte("pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00\n"),
		"sys/bus/platform/devices/pcspkr/modalias":    []byte("platform:pcspkr\n"),
		"lib/modules/" + testRelease + "/modules.dep": []byte(""),
		"init":     []byte("agent binary"),
		"dev/kmsg": nil,
	}, nil)
	if sc.shell {
		writeTree(t, root, map[string][]byte{"bin/busybox": []byte("#!busybox")}, nil)
		os.Chmod(filepath.Join(root, "bin/busybox"), 0o755)
	}
	writeTree(t, root, sc.files, nil)
	for prefix, err := range sc.recFail {
		h.rec.Fail[prefix] = err
	}
	if sc.initramfsRT {
		writeTree(t, root, map[string][]byte{"etc/resolv.conf": []byte("nameserver 10.0.2.3\n")}, nil)
	}
	kmsg, err := os.OpenFile(filepath.Join(root, "dev/kmsg"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kmsg.Close() })
	h.kmsg = kmsg

	// Mount points are "other devices"; everything else is the initramfs (dev 1).
	mounts := map[string]uint64{"sysroot": 2, "dev": 3, "proc": 4, "sys": 5, "run": 6, "media/usb": 20}
	for i, m := range sc.media {
		mounts["media/"+m.dev] = uint64(10 + i)
	}
	devOf := func(p string) (uint64, error) {
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return 0, err
		}
		if _, err := os.Lstat(p); err != nil {
			return 0, err
		}
		for m, d := range mounts {
			if rel == m || strings.HasPrefix(rel, m+"/") {
				return d, nil
			}
		}
		return 1, nil
	}
	deps := DefaultDeps(&bytes.Buffer{}, "x86_64")
	deps.LoadIndex = func(dir string) (coldplug.Index, error) { return newFakeIndex(dir), nil }
	// No console to prompt on, whatever the test binary's stdin is: a headless machine.
	deps.RestoreOverlay = restoreOverlayWith(nil, nil, "x86_64")
	deps.Media = func(ctx context.Context, req MediaRequest) (*MediaResult, error) {
		res := &MediaResult{}
		if req.Rescan != nil {
			req.Rescan() // as bootmedia.Find does once its uevent listener is open
		}
		for _, m := range sc.media {
			mnt := filepath.Join(req.MediaRoot, m.dev)
			if err := os.MkdirAll(mnt, 0o755); err != nil {
				return nil, err
			}
			if req.Loader != nil {
				req.PrepareFS(m.fstype)
			}
			if err := req.Mounter.Mount(filepath.Join(req.DevRoot, m.dev), mnt, m.fstype, MSRdonly, ""); err != nil {
				res.Log = append(res.Log, fmt.Sprintf("%s: mount: %v", m.dev, err))
				continue
			}
			writeTree(t, mnt, m.files, m.mtimes)
			med := Medium{Device: "/dev/" + m.dev, FSType: m.fstype, Label: m.label, Mountpoint: mnt}
			for rel := range m.files {
				if filepath.Base(rel) == ".boot_repository" {
					med.Repos = append(med.Repos, filepath.Join(mnt, filepath.Dir(rel)))
				}
				if strings.Contains(rel, ".apkovl.tar.gz") && !strings.Contains(rel, "/") {
					med.Apkovls = append(med.Apkovls, filepath.Join(mnt, rel))
				}
			}
			sort.Strings(med.Apkovls)
			res.Media = append(res.Media, med)
			res.Log = append(res.Log, fmt.Sprintf("%s: kept", m.dev))
		}
		return res, nil
	}
	deps.Install = func(ctx context.Context, req InstallRequest) (*InstallResult, error) {
		h.installs = append(h.installs, req)
		if len(req.Repos) == 0 {
			return nil, errors.New("no repositories")
		}
		res := &InstallResult{}
		failed := map[string]bool{}
		for _, f := range sc.failPkgs {
			failed[f] = true
			res.Failed = append(res.Failed, f+": bad signature")
		}
		for _, w := range req.World {
			if !failed[w] {
				res.Installed = append(res.Installed, w+"-1.0-r0")
			}
		}
		if !sc.noInit {
			writeTree(t, req.Root, map[string][]byte{"bin/busybox": []byte("busybox"), "etc/inittab": []byte(alpineInittab),
				"etc/securetty": []byte("console\ntty1\n")}, nil)
			os.Chmod(filepath.Join(req.Root, "bin/busybox"), 0o755)
			os.MkdirAll(filepath.Join(req.Root, "sbin"), 0o755)
			os.Symlink("/bin/busybox", filepath.Join(req.Root, "sbin/init"))
			os.MkdirAll(filepath.Join(req.Root, "root"), 0o755)
		}
		return res, nil
	}
	h.env = &Env{
		Root: root, Actions: h.rec, Log: NewLogger(&bytes.Buffer{}), Deps: deps,
		KernelRelease: testRelease, Arch: "x86_64", SelfExe: filepath.Join(root, "init"),
		InitEnv: []string{"HOME=/", "TERM=linux"}, SequentialModules: true,
		Now:    func() time.Time { return time.Unix(0, 0) },
		Sleep:  func(d time.Duration) { h.rec.Record("sleep " + d.String()) },
		Getpid: func() int { return 1 },
		DevOf:  devOf,
		IsRAM:  func(string) bool { return true },
		HasRTC: func() bool { return false },
		AskShell: func(d time.Duration) bool {
			h.rec.Record("ask " + d.String())
			return !sc.noAnswer
		},
	}
	return h
}

// render is the golden text of a boot: actions, the install request, phase outcomes, what the
// new root looks like, what remains of the initramfs, and the warnings/errors logged.
func (h *harness) render(t *testing.T, sc scenario, res *Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# cmdline: %s\n## actions\n%s", sc.cmdline, h.rec.String())
	for _, in := range h.installs {
		var repos []string
		for _, r := range in.Repos {
			repos = append(repos, h.env.rel(r))
		}
		fmt.Fprintf(&b, "## install\nroot: %s\nrepos: %s\nkeys: %s\narch: %s\nworld: %s\noverlay paths: %d\nkeep_apk_new: %v\n",
			h.env.rel(in.Root), strings.Join(repos, " "), h.env.rel(in.KeysDir), in.Arch, strings.Join(in.World, " "), len(in.OverlayPaths), in.KeepApkNew)
	}
	b.WriteString("## phases\n")
	for _, p := range res.Report.Phases {
		fmt.Fprintf(&b, "%s %s", p.Name, p.Status)
		if p.Error != "" {
			fmt.Fprintf(&b, ": %s", p.Error)
		}
		b.WriteString("\n")
	}
	if res.NewRoot != "" {
		b.WriteString("## new root\n")
		filepath.Walk(res.NewRoot, func(p string, fi os.FileInfo, err error) error {
			if err != nil {
				return nil
			}
			rel, _ := filepath.Rel(res.NewRoot, p)
			switch {
			case fi.Mode()&os.ModeSymlink != 0:
				l, _ := os.Readlink(p)
				fmt.Fprintf(&b, "%s -> %s\n", rel, l)
			case rel == "lib/modules" || rel == "root":
				fmt.Fprintf(&b, "%s/ %v\n", rel, fi.Mode().Perm())
			case strings.HasPrefix(rel, "lib/modules/"):
				return filepath.SkipDir
			case fi.Mode().IsRegular():
				switch rel {
				case "etc/apk/repositories", "etc/apk/arch", "etc/hostname", "etc/securetty", "etc/resolv.conf":
					data, _ := os.ReadFile(p)
					fmt.Fprintf(&b, "%s: %q\n", rel, string(data))
				case "etc/inittab":
					data, _ := os.ReadFile(p)
					fmt.Fprintf(&b, "%s: %q\n", rel, strings.TrimPrefix(string(data), alpineInittab))
				case "usr/local/sbin/ramboot", "var/cache/misc/modloop-lts.SIGN.RSA.alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub":
					fmt.Fprintf(&b, "%s %v\n", rel, fi.Mode().Perm())
				}
			}
			return nil
		})
	}
	b.WriteString("## initramfs left\n")
	ents, _ := os.ReadDir(h.root)
	for _, e := range ents {
		fmt.Fprintf(&b, "%s ", e.Name())
	}
	b.WriteString("\n## console warnings and errors\n")
	data, _ := os.ReadFile(filepath.Join(h.root, "dev/kmsg"))
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "<3>") || strings.HasPrefix(l, "<4>") {
			if i := strings.Index(l, "\n"); i >= 0 {
				l = l[:i]
			}
			b.WriteString(l + "\n")
		}
	}
	return strings.ReplaceAll(b.String(), h.root, "")
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("golden file %s: %v (run go test ./boot -update)", path, err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("boot log %s mismatch (-want +got):\n%s", name, diff)
	}
}

// runBoot runs the plan and, on a fatal error, the failure policy, like cmd/init.
func runBoot(t *testing.T, h *harness) (*Result, error) {
	res, err := Run(context.Background(), h.env)
	if err != nil {
		Fail(h.env, res, err)
	}
	return res, err
}

func repoMedium(dev string, extra map[string][]byte) fakeMedium {
	files := map[string][]byte{
		"apks/.boot_repository":       nil,
		"apks/x86_64/APKINDEX.tar.gz": []byte("index"),
		"boot/vmlinuz-lts":            []byte("kernel"),
	}
	for k, v := range extra {
		files[k] = v
	}
	return fakeMedium{dev: dev, fstype: "vfat", label: "ALPINE", files: files}
}

func TestBootScenarios(t *testing.T) {
	myhost := map[string]string{
		"etc/":             "",
		"etc/apk/":         "",
		"etc/apk/world":    "alpine-base\nopenssh\nchrony\n",
		"etc/hostname":     "myhost\n",
		"etc/lbu/":         "",
		"etc/lbu/lbu.conf": "LBU_MEDIA=vda\n",
		"etc/fstab":        "/dev/cdrom\t/media/cdrom\tiso9660\tnoauto,ro 0 0\ntmpfs\t/\ttmpfs\trw,size=512m 0 0\n",
		"root/":            "",
	}
	encrypted := func(files map[string]string, password string) []byte {
		var b bytes.Buffer
		if err := overlay.Encrypt(&b, tarGz(t, files), "aes-256-cbc", []byte(password), rand.Reader); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	withMarker := map[string]string{"etc/": "", "etc/.default_boot_services": "", "etc/hostname": "marked\n"}
	old, new := time.Unix(1600000000, 0), time.Unix(1700000000, 0)
	scenarios := []scenario{
		{
			// Alpine appendix A: local apkovl, pkgs=, console=ttyS0.
			name:    "local-apkovl",
			cmdline: "modules=loop,squashfs,sd-mod,usb-storage quiet=no apkovl=/media/vda/myhost.apkovl.tar.gz console=ttyS0 pkgs=htop,vim",
			media:   []fakeMedium{repoMedium("vda", map[string][]byte{"myhost.apkovl.tar.gz": tarGz(t, myhost)})},
		},
		{
			// Alpine appendix B: no apkovl; ssh_key, usbdelay, blacklist, rootflags, debug_init=no.
			name:        "no-apkovl-sshkey-blacklist",
			cmdline:     "ssh_key=https://example.org/me.pub usbdelay=3 blacklist=pcspkr rootflags=size=75% debug_init=no",
			media:       []fakeMedium{repoMedium("vda", map[string][]byte{"boot/modloop-lts": []byte("squashfs")})},
			initramfsRT: true,
		},
		{
			// Auto-detected overlay: the newest of two wins, deterministically; its marker adds the
			// default services; ramboot.media=unmount releases the medium.
			name:    "auto-apkovl-marker-unmount",
			cmdline: "console=tty0 console=ttyS0,115200 ramboot.media=unmount init_args=\"-x\" quiet",
			media: []fakeMedium{func() fakeMedium {
				m := repoMedium("vda", map[string][]byte{"old.apkovl.tar.gz": tarGz(t, myhost), "marked.apkovl.tar.gz": tarGz(t, withMarker)})
				m.mtimes = map[string]time.Time{"old.apkovl.tar.gz": old, "marked.apkovl.tar.gz": new}
				return m
			}()},
		},
		{
			// A corrupt overlay falls back to the newest lbu backup on the medium.
			name:    "broken-apkovl-backup",
			cmdline: "console=ttyS0",
			media: []fakeMedium{repoMedium("vdb", map[string][]byte{
				"myhost.apkovl.tar.gz":         []byte("this is not gzip"),
				"myhost.20240101120000.tar.gz": tarGz(t, withMarker),
				"myhost.20230101120000.tar.gz": tarGz(t, myhost),
			})},
		},
		{
			// The overlay's etc/fstab relocates the medium (LABEL=) to /media/usb before the
			// install, as Alpine does; repositories and the handover follow it.
			name:    "apkovl-fstab-relocation",
			cmdline: "console=ttyS0",
			media: []fakeMedium{repoMedium("vda", map[string][]byte{"usbhost.apkovl.tar.gz": tarGz(t, map[string]string{
				"etc/": "", "etc/fstab": "LABEL=ALPINE\t/media/usb\tvfat\tnoauto,ro 0 0\n/dev/cdrom /media/cdrom iso9660 noauto,ro 0 0\n",
				"etc/apk/": "", "etc/apk/world": "alpine-base\n", "etc/apk/repositories": "/media/usb/apks\n",
				"etc/lbu/": "", "etc/lbu/lbu.conf": "LBU_MEDIA=usb\n",
			})})},
		},
		{
			// apkovl=DEV:FSTYPE:PATH mounts a device that discovery did not keep (the overlay is
			// not at its top level) and unmounts it after the install, as Alpine does.
			name:    "apkovl-device-form",
			cmdline: "apkovl=vdb:ext4:cfg/h.apkovl.tar.gz",
			media:   []fakeMedium{repoMedium("vda", nil)},
			files: map[string][]byte{"media/vdb/cfg/h.apkovl.tar.gz": tarGz(t, map[string]string{
				"etc/": "", "etc/hostname": "h\n", "etc/apk/": "", "etc/apk/world": "alpine-base chrony\n"})},
		},
		{
			// /dev/pts cannot be mounted (best-effort inside a fatal phase): noted, the boot goes
			// on; the tmpfs root cannot be mounted: fatal, and without a shell the machine reboots.
			name:    "rootfs-mount-fails",
			cmdline: "panic=3",
			media:   []fakeMedium{repoMedium("vda", nil)},
			recFail: map[string]error{
				"mount -t devpts":             errors.New("operation not permitted"),
				"mount -t tmpfs -o mode=0755": errors.New("no space left on device"),
			},
		},
		{
			// The root cannot be mounted and no shell is at hand: the default policy installs
			// busybox from the boot repository into a small tmpfs and starts the rescue shell there.
			name:    "rootfs-fails-rescue-from-repo",
			cmdline: "console=ttyS0",
			media:   []fakeMedium{repoMedium("vda", nil)},
			recFail: map[string]error{"mount -t tmpfs -o mode=0755 tmpfs /sysroot": errors.New("no space left on device")},
		},
		{
			// A world package that fails is named, and the boot goes on.
			name:     "package-failure-continues",
			cmdline:  "pkgs=wireguard-tools noapkovl",
			media:    []fakeMedium{repoMedium("vda", nil)},
			files:    map[string][]byte{"var/cache/misc/modloop-lts.SIGN.RSA.alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub": []byte("sig")},
			failPkgs: []string{"wireguard-tools"},
		},
		{
			// ramboot.strict makes it fatal; panic=5 reboots after 5 s.
			name:     "package-failure-strict",
			cmdline:  "pkgs=wireguard-tools noapkovl ramboot.strict panic=5",
			media:    []fakeMedium{repoMedium("vda", nil)},
			failPkgs: []string{"wireguard-tools"},
		},
		{
			// No media: fatal; default policy starts the initramfs's shell, then reboots.
			name:    "no-media-shell",
			cmdline: "ramboot.wait=0.2",
			shell:   true,
		},
		{
			// Nobody at the console: the offered rescue shell is not started, the machine reboots.
			name:     "no-init-unattended",
			cmdline:  "noapkovl",
			media:    []fakeMedium{repoMedium("vda", nil)},
			noInit:   true,
			shell:    true,
			noAnswer: true,
		},
		{
			// No media and no shell: reboot after the default delay.
			name:    "no-media-no-shell",
			cmdline: "quiet",
		},
		{
			// No /sbin/init after the install: handover refuses; panic=0 halts.
			name:    "no-init-halt",
			cmdline: "panic=0 noapkovl",
			media:   []fakeMedium{repoMedium("vda", nil)},
			noInit:  true,
		},
		{
			// An encrypted apkovl opened with the key file from the initramfs (apkovl_key=PATH);
			// leftovers next to it (a stale .new, an interrupted lbu commit) are named, not used.
			name:    "encrypted-apkovl-key",
			cmdline: "apkovl_key=/etc/ovl.pass console=ttyS0",
			media: []fakeMedium{func() fakeMedium {
				m := repoMedium("vda", map[string][]byte{
					"myhost.apkovl.tar.gz.aes-256-cbc": encrypted(myhost, "s3cret"),
					"myhost.apkovl.tar.gz.new":         tarGz(t, withMarker),
					".lbu-commit-42.tmp":               []byte("partial"),
				})
				m.mtimes = map[string]time.Time{"myhost.apkovl.tar.gz.aes-256-cbc": old, "myhost.apkovl.tar.gz.new": new}
				return m
			}()},
			files: map[string][]byte{"etc/ovl.pass": []byte("s3cret\n")},
		},
		{
			// The key on a device discovery did not keep (apkovl_key=DEV:FSTYPE:RELPATH): mounted
			// read-only for the restore, unmounted after it.
			name:    "encrypted-apkovl-key-on-device",
			cmdline: "apkovl_key=vdb:ext4:keys/myhost.pass",
			media:   []fakeMedium{repoMedium("vda", map[string][]byte{"myhost.apkovl.tar.gz.aes-256-cbc": encrypted(myhost, "s3cret")})},
			files:   map[string][]byte{"media/vdb/keys/myhost.pass": []byte("s3cret\n")},
		},
		{
			// Encrypted, no key file, no interactive console: no prompt (nobody would answer), the
			// boot goes on at once without the overlay.
			name:    "encrypted-apkovl-headless",
			cmdline: "apkovl_key=/etc/missing.pass ip=::::myhost::none",
			media:   []fakeMedium{repoMedium("vda", map[string][]byte{"myhost.apkovl.tar.gz.aes-256-cbc": encrypted(myhost, "s3cret")})},
		},
		{
			// alpine_repo= names the repository; init= is honoured.
			name:    "alpine-repo-init",
			cmdline: "alpine_repo=/media/vda/custom init=/bin/busybox init_args=\"sh -c true\" noapkovl single",
			media:   []fakeMedium{repoMedium("vda", map[string][]byte{"custom/x86_64/APKINDEX.tar.gz": []byte("i")})},
			shell:   true,
		},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			h := newHarness(t, sc)
			res, _ := runBoot(t, h)
			checkGolden(t, sc.name, h.render(t, sc, res))
		})
	}
}

// TestBootReport checks the JSON report a successful boot leaves in /run.
func TestBootReport(t *testing.T) {
	sc := scenario{cmdline: "console=ttyS0 pkgs=htop", media: []fakeMedium{repoMedium("vda", nil)}}
	h := newHarness(t, sc)
	if _, err := Run(context.Background(), h.env); err != nil {
		t.Fatalf("Run() = %v, want nil", err)
	}
	data, err := os.ReadFile(filepath.Join(h.root, "run/ramboot/boot.json"))
	if err != nil {
		t.Fatalf("boot report: %v", err)
	}
	var rep Report
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatalf("boot report: %v", err)
	}
	var names []string
	for _, p := range rep.Phases {
		names = append(names, p.Name)
	}
	var want []string
	for _, p := range Plan() {
		want = append(want, p.Name)
	}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("report phases mismatch (-want +got):\n%s", diff)
	}
	if got, want := rep.Cmdline, sc.cmdline; got != want {
		t.Errorf("report cmdline = %q, want %q", got, want)
	}
	if got, want := strings.Join(rep.World, " "), "htop alpine-base"; got != want {
		t.Errorf("report world = %q, want %q", got, want)
	}
	if got, want := strings.Join(rep.Installed, " "), "htop-1.0-r0 alpine-base-1.0-r0"; got != want {
		t.Errorf("report installed = %q, want %q", got, want)
	}
	if got, want := strings.Join(rep.Repos, " "), "/media/vda/apks"; got != want {
		t.Errorf("report repositories = %q, want %q", got, want)
	}
	if len(rep.Media) != 1 || rep.Media[0].Device != "/dev/vda" {
		t.Errorf("report media = %+v, want /dev/vda", rep.Media)
	}
	if rep.Overlay == nil || rep.Overlay.Source != "none" {
		t.Errorf("report overlay = %+v, want source none", rep.Overlay)
	}
	if len(rep.Errors) != 0 {
		t.Errorf("report errors = %q, want none", rep.Errors)
	}
}

// TestPhasePanicRecovered: a panic inside a phase becomes that phase's error; PID 1 lives on.
func TestPhasePanicRecovered(t *testing.T) {
	sc := scenario{cmdline: "panic=1", media: []fakeMedium{repoMedium("vda", nil)}}
	h := newHarness(t, sc)
	h.env.Deps.Media = func(context.Context, MediaRequest) (*MediaResult, error) { panic("boom") }
	res, err := Run(context.Background(), h.env)
	var f *Failure
	if !errors.As(err, &f) || f.Phase != "media" || !strings.Contains(err.Error(), "panic: boom") {
		t.Fatalf("Run() error = %v, want a media-phase failure from the panic", err)
	}
	Fail(h.env, res, err)
	if got, want := h.rec.Lines()[len(h.rec.Lines())-3:], []string{"sleep 1s", "sync", "reboot restart"}; !cmp.Equal(got, want) {
		t.Errorf("failure policy actions = %q, want %q", got, want)
	}
}

func TestDescribeGolden(t *testing.T) {
	var b bytes.Buffer
	Describe(&b)
	checkGolden(t, "plan", b.String())
}

// TestBackgroundColdplug: with parallel, background coldplug the same modules are loaded as in
// the sequential (golden) mode, all before the handover, and the report lists them.
func TestBackgroundColdplug(t *testing.T) {
	sc := scenario{cmdline: "console=ttyS0", media: []fakeMedium{repoMedium("vda", nil)}}
	seq := newHarness(t, sc)
	if _, err := Run(context.Background(), seq.env); err != nil {
		t.Fatalf("Run(sequential) = %v", err)
	}
	par := newHarness(t, sc)
	par.env.SequentialModules = false
	res, err := Run(context.Background(), par.env)
	if err != nil {
		t.Fatalf("Run(background) = %v", err)
	}
	loads := func(h *harness) (mods []string, afterChroot bool) {
		chroot := false
		for _, l := range h.rec.Lines() {
			chroot = chroot || strings.HasPrefix(l, "chroot")
			if strings.HasPrefix(l, "insmod ") {
				mods = append(mods, l)
				afterChroot = afterChroot || chroot
			}
		}
		sort.Strings(mods)
		return mods, afterChroot
	}
	want, _ := loads(seq)
	got, late := loads(par)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("background coldplug module loads differ from sequential (-want +got):\n%s", diff)
	}
	if late {
		t.Errorf("a module was loaded after the chroot")
	}
	if len(res.Report.Modules) != len(want) {
		t.Errorf("report modules = %q, want %d entries", res.Report.Modules, len(want))
	}
}
