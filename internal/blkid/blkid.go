// Package blkid identifies the filesystem on a block device (or image file) from its superblock:
// type, label and UUID, printed the way util-linux blkid prints them, for the filesystems boot
// media use: iso9660 (with Joliet), vfat (FAT12/16/32), exfat (big USB sticks), ext2/3/4, xfs,
// btrfs and squashfs (type only).
//
// It replaces libblkid in the boot path with ~300 lines of pure Go: PID 1 must know the fstype to
// pass to mount(2) (the kernel has no "auto"), and LABEL=/UUID= hints need the same strings users
// see from `blkid`.
//
//	info, err := blkid.Probe(f) // f is an *os.File (block device) or any io.ReaderAt
//	if errors.Is(err, blkid.ErrUnknown) { ... no filesystem we know (err says what was seen) ... }
//	mount(dev, dir, info.Type, MS_RDONLY, "")
package blkid

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf16"
)

// Info is what Probe found. Type is the mount(2) fstype ("iso9660", "vfat", "exfat", "ext4",
// "ext3", "ext2", "xfs", "btrfs", "squashfs", "squashfs3", "jbd"); Label and UUID are as `blkid`
// prints them ("" when the filesystem has none).
type Info struct {
	Type  string
	Label string
	UUID  string
}

// ErrUnknown is returned (wrapped, with what was seen, e.g. "dos partition table") when no
// supported filesystem signature is present.
var ErrUnknown = errors.New("no known filesystem")

// prober recognises one filesystem; ok=false means "not this filesystem".
type prober func(r io.ReaderAt) (info Info, ok bool, err error)

// Probe identifies the filesystem readable through r. Short reads (tiny images) count as "not
// this filesystem", not as errors; other I/O errors are returned.
func Probe(r io.ReaderAt) (Info, error) {
	// Order matters: an isohybrid ISO carries an MBR (0x55AA at 510) in front of the ISO9660
	// descriptors, so iso9660 is tried before vfat; squashfs and ext have unambiguous magics.
	for _, p := range []prober{probeSquashfs, probeISO9660, probeExt, probeXFS, probeBtrfs, probeExFAT, probeVFAT} {
		info, ok, err := p(r)
		if err != nil {
			return Info{}, err
		}
		if ok {
			return info, nil
		}
	}
	if what := partitionTable(r); what != "" {
		return Info{}, fmt.Errorf("%w (%s)", ErrUnknown, what)
	}
	return Info{}, ErrUnknown
}

// ProbeFile opens path read-only and probes it; errors name the path.
func ProbeFile(path string) (Info, error) {
	f, err := os.Open(path)
	if err != nil {
		return Info{}, fmt.Errorf("blkid: %w", err)
	}
	defer f.Close()
	info, err := Probe(f)
	if err != nil {
		return Info{}, fmt.Errorf("blkid %s: %w", path, err)
	}
	return info, nil
}

// readAt reads exactly n bytes at off; ok=false when the source is shorter.
func readAt(r io.ReaderAt, off int64, n int) ([]byte, bool, error) {
	b := make([]byte, n)
	got, err := r.ReadAt(b, off)
	if got == n {
		return b, true, nil
	}
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, false, nil
	}
	return nil, false, fmt.Errorf("read %d bytes at offset %d: %w", n, off, err)
}

// --- squashfs ---

func probeSquashfs(r io.ReaderAt) (Info, bool, error) {
	b, ok, err := readAt(r, 0, 96)
	if !ok {
		return Info{}, false, err
	}
	var major uint16
	switch string(b[:4]) {
	case "hsqs": // little endian
		major = binary.LittleEndian.Uint16(b[28:])
	case "sqsh": // big endian (squashfs 3 and older only)
		major = binary.BigEndian.Uint16(b[28:])
	default:
		return Info{}, false, nil
	}
	if major < 4 {
		return Info{Type: "squashfs3"}, true, nil
	}
	return Info{Type: "squashfs"}, true, nil
}

// --- iso9660 ---

const (
	isoSector   = 2048
	isoVDOffset = 0x8000
	isoMaxVD    = 16
)

func probeISO9660(r io.ReaderAt) (Info, bool, error) {
	var pvd, joliet []byte
	for i := int64(0); i < isoMaxVD && (pvd == nil || joliet == nil); i++ {
		d, ok, err := readAt(r, isoVDOffset+i*isoSector, 881)
		if err != nil {
			return Info{}, false, err
		}
		if !ok || string(d[1:6]) != "CD001" || d[0] == 0xff {
			break
		}
		switch d[0] {
		case 1:
			if pvd == nil {
				pvd = d
			}
		case 2:
			// A supplementary descriptor is Joliet only with a UCS-2 escape sequence.
			esc := string(d[88:91])
			if joliet == nil && (esc == "%/@" || esc == "%/C" || esc == "%/E") {
				joliet = d
			}
		}
	}
	if pvd == nil {
		return Info{}, false, nil
	}
	info := Info{Type: "iso9660"}
	// blkid derives the UUID from the modification date, else the creation date.
	if u := isoDateUUID(pvd[830:847]); u != "" {
		info.UUID = u
	} else {
		info.UUID = isoDateUUID(pvd[813:830])
	}
	ascii := pvd[40:72]
	if joliet != nil {
		if merged, ok := mergeJoliet(joliet[40:72], ascii); ok {
			info.Label = merged
		} else {
			info.Label = trimLabel(decodeUTF16BE(joliet[40:72]))
		}
	} else {
		info.Label = trimLabel(string(ascii))
	}
	return info, true, nil
}

// isoDateUUID formats a 17-byte ISO9660 date ("YYYYMMDDhhmmsscc" + tz) as blkid's
// "YYYY-MM-DD-hh-mm-ss-cc"; an all-'0' date with zero offset means unset.
func isoDateUUID(d []byte) string {
	digits := d[:16]
	if bytes.Count(digits, []byte("0")) == 16 && d[16] == 0 {
		return ""
	}
	s := string(digits)
	return fmt.Sprintf("%s-%s-%s-%s-%s-%s-%s", s[0:4], s[4:6], s[6:8], s[8:10], s[10:12], s[12:14], s[14:16])
}

// mergeJoliet rebuilds the label the way blkid does: the Joliet volume id holds at most 16 UCS-2
// characters while the PVD holds 32 restricted ASCII characters ('_' for anything not
// representable). When the Joliet label is a prefix of the PVD label (case-insensitively, '_'
// matching anything) the result is the Joliet prefix followed by the rest of the PVD label.
func mergeJoliet(u16, ascii []byte) (string, bool) {
	units := make([]uint16, 0, len(u16)/2)
	for i := 0; i+1 < len(u16); i += 2 {
		units = append(units, uint16(u16[i])<<8|uint16(u16[i+1]))
	}
	var out []uint16
	a := 0
	for i := 0; i < len(units) && a < len(ascii); i, a = i+1, a+1 {
		u := units[i]
		if utf16.IsSurrogate(rune(u)) && i+1 < len(units) {
			out = append(out, u)
			i++
			u = units[i]
		}
		c := ascii[a]
		switch {
		case c == '_':
			out = append(out, u)
		case u == '_':
			out = append(out, uint16(c))
		case u < 0x80 && upper(byte(u)) == upper(c):
			if isUpper(c) {
				out = append(out, u)
			} else {
				out = append(out, uint16(c))
			}
		default:
			return "", false
		}
	}
	for ; a < len(ascii); a++ {
		out = append(out, uint16(ascii[a]))
	}
	return trimLabel(string(utf16.Decode(out))), true
}

func upper(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - 'a' + 'A'
	}
	return c
}

func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }

func decodeUTF16BE(b []byte) string {
	units := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		units = append(units, uint16(b[i])<<8|uint16(b[i+1]))
	}
	return string(utf16.Decode(units))
}

// trimLabel drops trailing NULs and whitespace, as blkid does for every label.
func trimLabel(s string) string {
	if i := strings.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	return strings.TrimRight(s, " \t\r\n")
}

// --- ext2/3/4 ---

const (
	extSBOffset = 1024
	extMagic    = 0xEF53

	extCompatHasJournal = 0x0004
	extIncompatJournDev = 0x0008
	// Features ext3 understands; anything else makes the filesystem ext4 (libblkid's rule).
	ext3IncompatSupp = 0x0002 | 0x0004 | 0x0010 // filetype, recover, meta_bg
	ext3ROCompatSupp = 0x0001 | 0x0002 | 0x0004 // sparse_super, large_file, btree_dir
)

func probeExt(r io.ReaderAt) (Info, bool, error) {
	sb, ok, err := readAt(r, extSBOffset, 256)
	if !ok {
		return Info{}, false, err
	}
	if binary.LittleEndian.Uint16(sb[0x38:]) != extMagic {
		return Info{}, false, nil
	}
	compat := binary.LittleEndian.Uint32(sb[0x5C:])
	incompat := binary.LittleEndian.Uint32(sb[0x60:])
	roCompat := binary.LittleEndian.Uint32(sb[0x64:])
	info := Info{UUID: formatUUID(sb[0x68:0x78]), Label: trimLabel(string(sb[0x78:0x88]))}
	switch {
	case incompat&extIncompatJournDev != 0:
		info.Type = "jbd"
	case incompat&^ext3IncompatSupp != 0 || roCompat&^ext3ROCompatSupp != 0:
		info.Type = "ext4"
	case compat&extCompatHasJournal != 0:
		info.Type = "ext3"
	default:
		info.Type = "ext2"
	}
	return info, true, nil
}

func formatUUID(b []byte) string {
	if bytes.Equal(b, make([]byte, 16)) {
		return ""
	}
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// --- vfat ---

func probeVFAT(r io.ReaderAt) (Info, bool, error) {
	bs, ok, err := readAt(r, 0, 512)
	if !ok {
		return Info{}, false, err
	}
	fat32 := string(bs[0x52:0x5A]) == "FAT32   "
	t := string(bs[0x36:0x3E])
	fat1x := t == "FAT12   " || t == "FAT16   " || t == "FAT     " || strings.HasPrefix(t, "MSDOS")
	if !fat32 && !fat1x {
		return Info{}, false, nil
	}
	sectorSize := int64(binary.LittleEndian.Uint16(bs[0x0B:]))
	spc := int64(bs[0x0D])
	reserved := int64(binary.LittleEndian.Uint16(bs[0x0E:]))
	nFATs := int64(bs[0x10])
	rootEntries := int64(binary.LittleEndian.Uint16(bs[0x11:]))
	media := bs[0x15]
	fatLen := int64(binary.LittleEndian.Uint16(bs[0x16:]))
	// The same sanity checks libblkid applies, so a random sector with "FAT" text is rejected.
	if !powerOf2(sectorSize) || sectorSize < 512 || sectorSize > 4096 || !powerOf2(spc) ||
		reserved == 0 || nFATs == 0 || (media != 0xf0 && media < 0xf8) {
		return Info{}, false, nil
	}
	info := Info{Type: "vfat"}
	var serial []byte
	var rootDir []byte
	if fatLen == 0 { // FAT32: fat_length lives in the extended BPB and the root is a cluster chain
		fatLen = int64(binary.LittleEndian.Uint32(bs[0x24:]))
		serial = bs[0x43:0x47]
		rootCluster := int64(binary.LittleEndian.Uint32(bs[0x2C:]))
		rootDir, err = fat32Chain(r, sectorSize, spc, reserved, nFATs, fatLen, rootCluster)
		if err != nil {
			return Info{}, false, err
		}
	} else {
		if bs[0x26] == 0x29 || bs[0x26] == 0x28 {
			serial = bs[0x27:0x2B]
		}
		off := (reserved + nFATs*fatLen) * sectorSize
		var got bool
		rootDir, got, err = readAt(r, off, int(rootEntries*32))
		if err != nil {
			return Info{}, false, err
		}
		if !got {
			rootDir = nil
		}
	}
	if serial != nil {
		info.UUID = fmt.Sprintf("%02X%02X-%02X%02X", serial[3], serial[2], serial[1], serial[0])
	}
	// util-linux (2.38+) takes LABEL only from the root-directory volume-label entry, which is
	// what Windows and mkfs.vfat -n maintain; the boot-sector copy is often stale ("NO NAME").
	info.Label = trimLabel(fatDirLabel(rootDir))
	return info, true, nil
}

func powerOf2(n int64) bool { return n > 0 && n&(n-1) == 0 }

// fat32Chain reads the root directory clusters, following the FAT; bounded so a corrupt chain
// cannot loop forever.
func fat32Chain(r io.ReaderAt, sectorSize, spc, reserved, nFATs, fatLen, cluster int64) ([]byte, error) {
	const maxClusters = 64
	clusterSize := sectorSize * spc
	dataStart := (reserved + nFATs*fatLen) * sectorSize
	var dir []byte
	for i := 0; i < maxClusters && cluster >= 2 && cluster < 0x0FFFFFF7; i++ {
		b, ok, err := readAt(r, dataStart+(cluster-2)*clusterSize, int(clusterSize))
		if err != nil || !ok {
			return dir, err
		}
		dir = append(dir, b...)
		if fatDirLabel(b) != "" || hasDirEnd(b) {
			break
		}
		e, ok, err := readAt(r, reserved*sectorSize+cluster*4, 4)
		if err != nil || !ok {
			return dir, err
		}
		cluster = int64(binary.LittleEndian.Uint32(e) & 0x0FFFFFFF)
	}
	return dir, nil
}

func hasDirEnd(dir []byte) bool {
	for i := 0; i+32 <= len(dir); i += 32 {
		if dir[i] == 0 {
			return true
		}
	}
	return false
}

// fatDirLabel returns the 11-byte volume-label entry of a directory, "" if none.
func fatDirLabel(dir []byte) string {
	for i := 0; i+32 <= len(dir); i += 32 {
		e := dir[i : i+32]
		if e[0] == 0 {
			break
		}
		attr := e[11]
		clusterHigh := binary.LittleEndian.Uint16(e[20:])
		clusterLow := binary.LittleEndian.Uint16(e[26:])
		if e[0] == 0xE5 || attr&0x3F == 0x0F || clusterHigh != 0 || clusterLow != 0 || attr&0x18 != 0x08 {
			continue // deleted, long-name part, has data (not a label), or not a volume label
		}
		name := append([]byte(nil), e[:11]...)
		if name[0] == 0x05 { // 0xE5 stored as 0x05 because 0xE5 marks deleted entries
			name[0] = 0xE5
		}
		return string(name)
	}
	return ""
}

// partitionTable names a partition table at the start of r, for a clearer "no filesystem" error.
func partitionTable(r io.ReaderAt) string {
	if b, ok, _ := readAt(r, 512, 8); ok && string(b) == "EFI PART" {
		return "gpt partition table"
	}
	if b, ok, _ := readAt(r, 510, 2); ok && b[0] == 0x55 && b[1] == 0xAA {
		return "dos partition table"
	}
	return ""
}

// --- xfs ---

func probeXFS(r io.ReaderAt) (Info, bool, error) {
	sb, ok, err := readAt(r, 0, 120)
	if !ok {
		return Info{}, false, err
	}
	if string(sb[:4]) != "XFSB" {
		return Info{}, false, nil
	}
	bs := binary.BigEndian.Uint32(sb[4:])
	if bs < 512 || bs > 65536 || bs&(bs-1) != 0 {
		return Info{}, false, nil // not a plausible block size: not an XFS superblock
	}
	return Info{Type: "xfs", UUID: formatUUID(sb[32:48]), Label: trimLabel(string(sb[108:120]))}, true, nil
}

// --- btrfs ---

func probeBtrfs(r io.ReaderAt) (Info, bool, error) {
	sb, ok, err := readAt(r, 0x10000, 0x12b+256)
	if !ok {
		return Info{}, false, err
	}
	if string(sb[0x40:0x48]) != "_BHRfS_M" {
		return Info{}, false, nil
	}
	return Info{Type: "btrfs", UUID: formatUUID(sb[0x20:0x30]), Label: trimLabel(string(sb[0x12b:]))}, true, nil
}

// --- exfat ---

func probeExFAT(r io.ReaderAt) (Info, bool, error) {
	bs, ok, err := readAt(r, 0, 512)
	if !ok {
		return Info{}, false, err
	}
	if string(bs[3:11]) != "EXFAT   " {
		return Info{}, false, nil
	}
	sectorShift, clusterShift := bs[108], bs[109]
	if sectorShift < 9 || sectorShift > 12 || int(sectorShift)+int(clusterShift) > 25 {
		return Info{}, false, nil
	}
	s := bs[100:104]
	info := Info{Type: "exfat", UUID: fmt.Sprintf("%02X%02X-%02X%02X", s[3], s[2], s[1], s[0])}
	sector := int64(1) << sectorShift
	clusterSize := sector << clusterShift
	fatOff := int64(binary.LittleEndian.Uint32(bs[80:])) * sector
	heapOff := int64(binary.LittleEndian.Uint32(bs[88:])) * sector
	cluster := int64(binary.LittleEndian.Uint32(bs[96:]))
	// Walk the root directory's cluster chain (bounded) for the volume-label entry (type 0x83).
	for i := 0; i < 64 && cluster >= 2 && cluster < 0xFFFFFFF7; i++ {
		dir, ok, err := readAt(r, heapOff+(cluster-2)*clusterSize, int(clusterSize))
		if err != nil {
			return Info{}, false, err
		}
		if !ok {
			break
		}
		for off := 0; off+32 <= len(dir); off += 32 {
			switch dir[off] {
			case 0x00: // end of directory
				return info, true, nil
			case 0x83:
				n := int(dir[off+1])
				if n > 11 {
					n = 11
				}
				units := make([]uint16, n)
				for j := range units {
					units[j] = binary.LittleEndian.Uint16(dir[off+2+2*j:])
				}
				info.Label = trimLabel(string(utf16.Decode(units)))
				return info, true, nil
			}
		}
		next, ok, err := readAt(r, fatOff+cluster*4, 4)
		if err != nil || !ok {
			return info, true, err
		}
		cluster = int64(binary.LittleEndian.Uint32(next))
	}
	return info, true, nil
}
