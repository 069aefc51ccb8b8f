package blkid_test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/disk"
	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"

	"github.com/ramboot/ramboot/internal/blkid"
)

// utilLinuxBlkid returns what util-linux blkid (the judge) reports for img; TYPE/LABEL/UUID.
func utilLinuxBlkid(t *testing.T, img string) blkid.Info {
	t.Helper()
	bin, err := exec.LookPath("blkid")
	if err != nil {
		t.Skip("prerequisite missing: util-linux blkid (the reference to compare with)")
	}
	// -p: low-level superblock probe, no cache; -o udev: ID_FS_* lines where *_ENC values are
	// exact bytes with \xNN escapes (the export format mangles non-ASCII labels).
	out, err := exec.Command(bin, "-p", "-o", "udev", img).Output()
	if err != nil {
		t.Fatalf("blkid -p -o udev %s: %v", img, err)
	}
	var info blkid.Info
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		switch k {
		case "ID_FS_TYPE":
			info.Type = v
		case "ID_FS_LABEL_ENC":
			info.Label = unescapeUdev(t, v)
		case "ID_FS_UUID_ENC":
			info.UUID = unescapeUdev(t, v)
		}
	}
	return info
}

// unescapeUdev decodes blkid's udev-format \xNN escapes.
func unescapeUdev(t *testing.T, v string) string {
	t.Helper()
	var b []byte
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+3 < len(v) && v[i+1] == 'x' {
			n, err := strconv.ParseUint(v[i+2:i+4], 16, 8)
			if err != nil {
				t.Fatalf("bad udev escape in %q: %v", v, err)
			}
			b = append(b, byte(n))
			i += 3
			continue
		}
		b = append(b, v[i])
	}
	return string(b)
}

func need(t *testing.T, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		t.Skipf("prerequisite missing: %s (install dosfstools/e2fsprogs/xorriso/squashfs-tools/exfatprogs/xfsprogs/btrfs-progs)", tool)
	}
	return p
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(need(t, name), args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func sparse(t *testing.T, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// mediaTree is a small Alpine-like media layout for the image builders.
func mediaTree(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tree")
	for _, p := range []string{"apks/x86_64", "boot"} {
		if err := os.MkdirAll(filepath.Join(dir, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for p, c := range map[string]string{"apks/.boot_repository": "", "boot/vmlinuz-lts": "kernel", "host.apkovl.tar.gz": "x"} {
		if err := os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestProbeMkfsImages builds real filesystems with the standard tools and checks Probe against
// the values given to mkfs and against util-linux blkid.
func TestProbeMkfsImages(t *testing.T) {
	tree := mediaTree(t)
	tests := []struct {
		name  string
		size  int64
		build func(t *testing.T, img string)
		want  blkid.Info // UUID "*" = whatever util-linux reports (date-derived for iso9660, random for exfat)
	}{
		{"fat12", 1 << 20, func(t *testing.T, img string) {
			run(t, "mkfs.vfat", "-F", "12", "-n", "ALPINE12", "-i", "1234ABCD", img)
		}, blkid.Info{Type: "vfat", Label: "ALPINE12", UUID: "1234-ABCD"}},
		{"fat16", 32 << 20, func(t *testing.T, img string) {
			run(t, "mkfs.vfat", "-F", "16", "-n", "ALP 16", "-i", "deadbeef", img)
		}, blkid.Info{Type: "vfat", Label: "ALP 16", UUID: "DEAD-BEEF"}},
		{"fat32", 64 << 20, func(t *testing.T, img string) {
			run(t, "mkfs.vfat", "-F", "32", "-n", "ALPINE", "-i", "0badc0de", img)
		}, blkid.Info{Type: "vfat", Label: "ALPINE", UUID: "0BAD-C0DE"}},
		{"fat32-nolabel", 64 << 20, func(t *testing.T, img string) {
			run(t, "mkfs.vfat", "-F", "32", "-i", "00000001", img)
		}, blkid.Info{Type: "vfat", UUID: "0000-0001"}},
		{"ext4", 16 << 20, func(t *testing.T, img string) {
			run(t, "mkfs.ext4", "-q", "-F", "-L", "alpine-ext4", "-U", "2f1c2c9e-8a3f-4a57-9c43-1d7b8f0e6a11", "-d", tree, img)
		}, blkid.Info{Type: "ext4", Label: "alpine-ext4", UUID: "2f1c2c9e-8a3f-4a57-9c43-1d7b8f0e6a11"}},
		{"ext3", 16 << 20, func(t *testing.T, img string) {
			run(t, "mkfs.ext4", "-q", "-F", "-t", "ext3", "-L", "e3", "-U", "00112233-4455-6677-8899-aabbccddeeff", img)
		}, blkid.Info{Type: "ext3", Label: "e3", UUID: "00112233-4455-6677-8899-aabbccddeeff"}},
		{"ext2", 16 << 20, func(t *testing.T, img string) {
			run(t, "mkfs.ext4", "-q", "-F", "-t", "ext2", "-U", "ffeeddcc-bbaa-9988-7766-554433221100", img)
		}, blkid.Info{Type: "ext2", UUID: "ffeeddcc-bbaa-9988-7766-554433221100"}},
		{"iso9660-joliet", 0, func(t *testing.T, img string) {
			run(t, "xorriso", "-as", "mkisofs", "-quiet", "-J", "-R", "-V", "alpine-std 3.19.1 x86_64", "-o", img, tree)
		}, blkid.Info{Type: "iso9660", Label: "alpine-std 3.19.1 x86_64", UUID: "*"}},
		{"iso9660-plain", 0, func(t *testing.T, img string) {
			run(t, "xorriso", "-as", "mkisofs", "-quiet", "-V", "ALPINE_PLAIN", "-o", img, tree)
		}, blkid.Info{Type: "iso9660", Label: "ALPINE_PLAIN", UUID: "*"}},
		{"exfat", 64 << 20, func(t *testing.T, img string) {
			run(t, "mkfs.exfat", "-L", "BIGSTICK", img) // serial is random (no option in exfatprogs 1.2)
		}, blkid.Info{Type: "exfat", Label: "BIGSTICK", UUID: "*"}},
		{"exfat-nolabel", 64 << 20, func(t *testing.T, img string) {
			run(t, "mkfs.exfat", img)
		}, blkid.Info{Type: "exfat", UUID: "*"}},
		{"xfs", 320 << 20, func(t *testing.T, img string) {
			run(t, "mkfs.xfs", "-q", "-f", "-L", "xfsdata", "-m", "uuid=6e3a1b2c-0d4e-4f50-8a6b-7c8d9e0f1a2b", img)
		}, blkid.Info{Type: "xfs", Label: "xfsdata", UUID: "6e3a1b2c-0d4e-4f50-8a6b-7c8d9e0f1a2b"}},
		{"btrfs", 128 << 20, func(t *testing.T, img string) {
			run(t, "mkfs.btrfs", "-q", "-f", "-L", "btr data", "-U", "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", img)
		}, blkid.Info{Type: "btrfs", Label: "btr data", UUID: "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"}},
		{"squashfs", 0, func(t *testing.T, img string) {
			run(t, "mksquashfs", tree, img, "-quiet", "-noappend", "-no-progress")
		}, blkid.Info{Type: "squashfs"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), tc.name+".img")
			if tc.size > 0 {
				sparse(t, img, tc.size)
			}
			tc.build(t, img)
			got, err := blkid.ProbeFile(img)
			if err != nil {
				t.Fatalf("ProbeFile(%s) error: %v", tc.name, err)
			}
			judge := utilLinuxBlkid(t, img)
			want := tc.want
			if want.UUID == "*" {
				want.UUID = judge.UUID
				if want.UUID == "" {
					t.Fatalf("util-linux blkid reports no UUID for %s", tc.name)
				}
			}
			if got != want {
				t.Errorf("ProbeFile(%s) = %+v, want %+v", tc.name, got, want)
			}
			if got != judge {
				t.Errorf("ProbeFile(%s) = %+v, util-linux blkid says %+v", tc.name, got, judge)
			}
		})
	}
}

// TestProbeGoDiskfsImages uses go-diskfs (always available, no external tools) to build the FAT32
// and ISO9660 media the media builder and the QEMU tests use.
func TestProbeGoDiskfsImages(t *testing.T) {
	dir := t.TempDir()

	fatImg := filepath.Join(dir, "fat32.img")
	d, err := diskfs.Create(fatImg, 40<<20, diskfs.SectorSizeDefault)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateFilesystem(disk.FilesystemSpec{Partition: 0, FSType: filesystem.TypeFat32, VolumeLabel: "RAMBOOT"}); err != nil {
		t.Fatal(err)
	}
	d.Close()

	isoImg := filepath.Join(dir, "media.iso")
	d, err = diskfs.Create(isoImg, 4<<20, 2048)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := d.CreateFilesystem(disk.FilesystemSpec{Partition: 0, FSType: filesystem.TypeISO9660, WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := fs.Mkdir("/apks"); err != nil {
		t.Fatal(err)
	}
	if err := fs.(*iso9660.FileSystem).Finalize(iso9660.FinalizeOptions{VolumeIdentifier: "RAMBOOT_ISO", Joliet: true}); err != nil {
		t.Fatal(err)
	}
	d.Close()

	for _, tc := range []struct {
		img       string
		wantType  string
		wantLabel string
	}{
		{fatImg, "vfat", "RAMBOOT"},
		{isoImg, "iso9660", "RAMBOOT_ISO"},
	} {
		got, err := blkid.ProbeFile(tc.img)
		if err != nil {
			t.Fatalf("ProbeFile(%s) error: %v", filepath.Base(tc.img), err)
		}
		if got.Type != tc.wantType || got.Label != tc.wantLabel {
			t.Errorf("ProbeFile(%s) = %+v, want type %s label %s", filepath.Base(tc.img), got, tc.wantType, tc.wantLabel)
		}
		if _, err := exec.LookPath("blkid"); err == nil {
			if judge := utilLinuxBlkid(t, tc.img); got != judge {
				t.Errorf("ProbeFile(%s) = %+v, util-linux blkid says %+v", filepath.Base(tc.img), got, judge)
			}
		}
	}
}
