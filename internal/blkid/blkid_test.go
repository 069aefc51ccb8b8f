package blkid_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/ramboot/ramboot/internal/blkid"
)

// Synthetic superblocks, written byte by byte, for cases real mkfs output does not produce.

func pad(s string, n int) []byte {
	b := bytes.Repeat([]byte{' '}, n)
	copy(b, s)
	return b
}

func ucs2(s string, n int) []byte {
	b := make([]byte, n)
	for i := 0; i+1 < n; i += 2 {
		b[i], b[i+1] = 0, ' '
	}
	for i, u := range utf16.Encode([]rune(s)) {
		if 2*i+1 >= n {
			break
		}
		binary.BigEndian.PutUint16(b[2*i:], u)
	}
	return b
}

type isoSpec struct {
	label    string
	joliet   string // "" = no Joliet descriptor
	created  string // 16 digits; "" = unset
	modified string
}

func isoImage(s isoSpec) []byte {
	img := make([]byte, 0x8000+4*2048)
	vd := func(i int) []byte { return img[0x8000+i*2048 : 0x8000+(i+1)*2048] }
	date := func(d []byte, v string) {
		if v == "" {
			copy(d, bytes.Repeat([]byte{'0'}, 16))
			d[16] = 0
			return
		}
		copy(d, v)
		d[16] = 4 // +1h
	}
	p := vd(0)
	p[0] = 1
	copy(p[1:], "CD001")
	p[6] = 1
	copy(p[40:72], pad(s.label, 32))
	date(p[813:830], s.created)
	date(p[830:847], s.modified)
	next := 1
	if s.joliet != "" {
		j := vd(next)
		next++
		j[0] = 2
		copy(j[1:], "CD001")
		copy(j[88:], "%/E")
		copy(j[40:72], ucs2(s.joliet, 32))
	}
	e := vd(next)
	e[0] = 0xff
	copy(e[1:], "CD001")
	return img
}

func TestProbeISO9660(t *testing.T) {
	tests := []struct {
		name string
		spec isoSpec
		want blkid.Info
	}{
		{"modified date wins", isoSpec{label: "ALPINE", created: "2024012612354300", modified: "2024012700000099"},
			blkid.Info{Type: "iso9660", Label: "ALPINE", UUID: "2024-01-27-00-00-00-99"}},
		{"unset modified falls back to created", isoSpec{label: "ALPINE", created: "2024012612354300"},
			blkid.Info{Type: "iso9660", Label: "ALPINE", UUID: "2024-01-26-12-35-43-00"}},
		{"no dates no uuid", isoSpec{label: "X"}, blkid.Info{Type: "iso9660", Label: "X"}},
		// Joliet keeps 16 UCS-2 characters; the rest comes from the PVD, the case from Joliet.
		{"joliet prefix merged", isoSpec{label: "ALPINE-STD_3.19.1 X86_64", joliet: "alpine-std 3.19."},
			blkid.Info{Type: "iso9660", Label: "alpine-std 3.19.1 X86_64"}},
		{"joliet non-ascii", isoSpec{label: "M_NCHEN", joliet: "München"},
			blkid.Info{Type: "iso9660", Label: "München"}},
		{"joliet unrelated wins", isoSpec{label: "PVDNAME", joliet: "other"},
			blkid.Info{Type: "iso9660", Label: "other"}},
	}
	for _, tc := range tests {
		got, err := blkid.Probe(bytes.NewReader(isoImage(tc.spec)))
		if err != nil {
			t.Errorf("Probe(%s) error: %v", tc.name, err)
			continue
		}
		if got != tc.want {
			t.Errorf("Probe(%s) = %+v, want %+v", tc.name, got, tc.want)
		}
		if judge, ok := judgeBytes(t, isoImage(tc.spec)); ok && got != judge {
			t.Errorf("Probe(%s) = %+v, util-linux blkid says %+v", tc.name, got, judge)
		}
	}
}

// judgeBytes runs util-linux blkid on data when it is installed (ok=false otherwise: these
// synthetic cases still check the expected values above).
func judgeBytes(t *testing.T, data []byte) (blkid.Info, bool) {
	t.Helper()
	if _, err := exec.LookPath("blkid"); err != nil {
		return blkid.Info{}, false
	}
	f := filepath.Join(t.TempDir(), "img")
	if err := os.WriteFile(f, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return utilLinuxBlkid(t, f), true
}

// fat16Image is a FAT16 volume: boot sector, 1 FAT of 1 sector, 16 root entries.
func fat16Image(bootLabel string, rootEntries [][]byte, media byte) []byte {
	img := make([]byte, 64*512)
	bs := img[:512]
	copy(bs, "\xeb\x3c\x90mkfs.fat")
	binary.LittleEndian.PutUint16(bs[0x0B:], 512)
	bs[0x0D] = 4
	binary.LittleEndian.PutUint16(bs[0x0E:], 1)
	bs[0x10] = 1
	binary.LittleEndian.PutUint16(bs[0x11:], 16)
	binary.LittleEndian.PutUint16(bs[0x13:], 64)
	bs[0x15] = media
	binary.LittleEndian.PutUint16(bs[0x16:], 1)
	bs[0x26] = 0x29
	copy(bs[0x27:], []byte{0x78, 0x56, 0x34, 0x12})
	copy(bs[0x2B:], pad(bootLabel, 11))
	copy(bs[0x36:], "FAT16   ")
	bs[510], bs[511] = 0x55, 0xAA
	root := img[2*512:]
	for i, e := range rootEntries {
		copy(root[i*32:], e)
	}
	return img
}

func dirEntry(name string, attr byte) []byte {
	e := make([]byte, 32)
	copy(e, pad(name, 11))
	e[11] = attr
	return e
}

func TestProbeVFATLabels(t *testing.T) {
	deleted := dirEntry("OLDLABEL", 0x08)
	deleted[0] = 0xE5
	tests := []struct {
		name      string
		bootLabel string
		root      [][]byte
		want      string
	}{
		{"root dir label wins over boot sector", "BOOTLBL", [][]byte{dirEntry("ROOTLBL", 0x08)}, "ROOTLBL"},
		// util-linux ignores the boot-sector copy (it reports it as LABEL_FATBOOT only).
		{"boot label alone is not the label", "BOOTLBL", [][]byte{dirEntry("FILE    TXT", 0x20)}, ""},
		{"NO NAME means no label", "NO NAME", nil, ""},
		{"deleted and long-name entries skipped", "BOOTLBL", [][]byte{deleted, dirEntry("LFNPART", 0x0F), dirEntry("REAL", 0x08)}, "REAL"},
	}
	for _, tc := range tests {
		got, err := blkid.Probe(bytes.NewReader(fat16Image(tc.bootLabel, tc.root, 0xF8)))
		if err != nil {
			t.Errorf("Probe(%s) error: %v", tc.name, err)
			continue
		}
		want := blkid.Info{Type: "vfat", Label: tc.want, UUID: "1234-5678"}
		if got != want {
			t.Errorf("Probe(%s) = %+v, want %+v", tc.name, got, want)
		}
		if judge, ok := judgeBytes(t, fat16Image(tc.bootLabel, tc.root, 0xF8)); ok && got != judge {
			t.Errorf("Probe(%s) = %+v, util-linux blkid says %+v", tc.name, got, judge)
		}
	}
}

func extImage(compat, incompat, roCompat uint32) []byte {
	img := make([]byte, 4096)
	sb := img[1024:]
	binary.LittleEndian.PutUint16(sb[0x38:], 0xEF53)
	binary.LittleEndian.PutUint32(sb[0x5C:], compat)
	binary.LittleEndian.PutUint32(sb[0x60:], incompat)
	binary.LittleEndian.PutUint32(sb[0x64:], roCompat)
	copy(sb[0x68:], []byte{0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
	copy(sb[0x78:], "lbl\x00\x00")
	return img
}

func TestProbeExtVariants(t *testing.T) {
	tests := []struct {
		name                       string
		compat, incompat, roCompat uint32
		want                       string
	}{
		{"plain", 0, 0x2, 0x1, "ext2"},
		{"journal", 0x4, 0x2, 0x3, "ext3"},
		{"extents", 0x4, 0x2 | 0x40, 0x1, "ext4"},
		{"huge_file ro_compat", 0x4, 0x2, 0x8, "ext4"},
		{"journal device", 0, 0x8, 0, "jbd"},
	}
	for _, tc := range tests {
		got, err := blkid.Probe(bytes.NewReader(extImage(tc.compat, tc.incompat, tc.roCompat)))
		if err != nil {
			t.Errorf("Probe(%s) error: %v", tc.name, err)
			continue
		}
		want := blkid.Info{Type: tc.want, Label: "lbl", UUID: "deadbeef-0102-0304-0506-0708090a0b0c"}
		if got != want {
			t.Errorf("Probe(%s) = %+v, want %+v", tc.name, got, want)
		}
	}
}

type errReader struct{ err error }

func (r errReader) ReadAt([]byte, int64) (int, error) { return 0, r.err }

func TestProbeNoFilesystem(t *testing.T) {
	mbr := make([]byte, 1<<20)
	mbr[510], mbr[511] = 0x55, 0xAA
	gpt := append([]byte(nil), mbr...)
	copy(gpt[512:], "EFI PART")
	tests := []struct {
		name     string
		data     []byte
		wantText string
	}{
		{"zeros", make([]byte, 1<<20), "no known filesystem"},
		{"tiny", []byte("hello"), "no known filesystem"},
		{"mbr", mbr, "dos partition table"},
		{"gpt", gpt, "gpt partition table"},
		// "FAT16" text but an impossible media byte: not a FAT boot sector.
		{"fat text, bad media byte", fat16Image("X", nil, 0x12), "dos partition table"},
	}
	for _, tc := range tests {
		got, err := blkid.Probe(bytes.NewReader(tc.data))
		if !errors.Is(err, blkid.ErrUnknown) || !strings.Contains(err.Error(), tc.wantText) {
			t.Errorf("Probe(%s) = %+v, %v; want ErrUnknown mentioning %q", tc.name, got, err, tc.wantText)
		}
	}
	ioErr := errors.New("EIO on sector 64")
	if _, err := blkid.Probe(errReader{ioErr}); !errors.Is(err, ioErr) {
		t.Errorf("Probe(failing reader) error = %v, want it to wrap %v", err, ioErr)
	}
	if _, err := blkid.ProbeFile("/nonexistent/dev/vdz"); err == nil || !strings.Contains(err.Error(), "/nonexistent/dev/vdz") {
		t.Errorf("ProbeFile(missing) error = %v, want one naming the path", err)
	}
}

func TestProbeSquashfs3(t *testing.T) {
	b := make([]byte, 4096)
	copy(b, "hsqs")
	binary.LittleEndian.PutUint16(b[28:], 3)
	if got, err := blkid.Probe(bytes.NewReader(b)); err != nil || got.Type != "squashfs3" {
		t.Errorf("Probe(squashfs v3) = %+v, %v; want type squashfs3", got, err)
	}
}
