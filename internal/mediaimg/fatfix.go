package mediaimg

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"unicode/utf16"
)

// fixFAT repairs two flaws of go-diskfs v1.9.4's FAT32 writer that fsck.fat reports and that
// make its own reader lose files:
//
//   - a long name starting with a dot (".boot_repository") gets an empty 8.3 stem ("        BOO"),
//     an invalid short name; we give it a valid unique one ("BOOT_R~1") and update the checksum
//     its long-name entries carry;
//   - ".." entries of first-level directories point at the root cluster, where the FAT
//     specification wants 0;
//   - empty files own a cluster, where they should have none (we free it).
//
// It walks the directory tree of the image in place; regular file data is never touched.
func fixFAT(img string) error {
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	bs := make([]byte, 512)
	if _, err := f.ReadAt(bs, 0); err != nil {
		return fmt.Errorf("read boot sector: %w", err)
	}
	v := fatVolume{f: f}
	bps := int64(binary.LittleEndian.Uint16(bs[11:]))
	spc := int64(bs[13])
	reserved := int64(binary.LittleEndian.Uint16(bs[14:]))
	nfats := int64(bs[16])
	spf := int64(binary.LittleEndian.Uint32(bs[36:]))
	v.root = binary.LittleEndian.Uint32(bs[44:])
	if bps == 0 || spc == 0 || spf == 0 || string(bs[82:87]) != "FAT32" {
		return errors.New("not a FAT32 boot sector")
	}
	v.fatOff = reserved * bps
	v.fatSize = spf * bps
	v.nfats = nfats
	v.dataOff = (reserved + nfats*spf) * bps
	v.clusterSize = spc * bps
	return v.fixDir(v.root, 0)
}

type fatVolume struct {
	f                                            *os.File
	root                                         uint32
	fatOff, fatSize, nfats, dataOff, clusterSize int64
}

// chain returns the byte offsets of the clusters of the chain starting at c.
func (v fatVolume) chain(c uint32) ([]int64, error) {
	var offs []int64
	var e [4]byte
	for c >= 2 && c < 0x0FFFFFF8 {
		if len(offs) > 1<<20 {
			return nil, errors.New("FAT cluster chain loops")
		}
		offs = append(offs, v.dataOff+int64(c-2)*v.clusterSize)
		if _, err := v.f.ReadAt(e[:], v.fatOff+int64(c)*4); err != nil {
			return nil, err
		}
		c = binary.LittleEndian.Uint32(e[:]) & 0x0FFFFFFF
	}
	return offs, nil
}

func (v fatVolume) fixDir(cluster uint32, depth int) error {
	if depth > 32 {
		return errors.New("FAT directories nested too deep")
	}
	offs, err := v.chain(cluster)
	if err != nil {
		return err
	}
	// Read the whole directory: long-name entries may straddle cluster boundaries.
	var slots []slot
	for _, o := range offs {
		buf := make([]byte, v.clusterSize)
		if _, err := v.f.ReadAt(buf, o); err != nil {
			return err
		}
		for i := int64(0); i < v.clusterSize; i += 32 {
			slots = append(slots, slot{o + i, buf[i : i+32]})
		}
	}
	used := map[string]bool{}
	for _, s := range slots {
		if s.b[0] != 0 && s.b[0] != 0xE5 && s.b[11] != 0x0F {
			used[string(s.b[:11])] = true
		}
	}
	var lfn []slot
	for _, s := range slots {
		e := s.b
		if e[0] == 0 {
			break
		}
		if e[0] == 0xE5 {
			lfn = nil
			continue
		}
		if e[11] == 0x0F {
			lfn = append(lfn, s)
			continue
		}
		name := string(e[:11])
		switch {
		case name == ".          ":
		case name == "..         ":
			if depth == 1 && clusterOf(e) == v.root {
				binary.LittleEndian.PutUint16(e[20:], 0)
				binary.LittleEndian.PutUint16(e[26:], 0)
				if _, err := v.f.WriteAt(e, s.off); err != nil {
					return err
				}
			}
		case e[0] == ' ' && len(lfn) > 0:
			short := uniqueShort(longName(lfn), used)
			used[short] = true
			copy(e[:11], short)
			if _, err := v.f.WriteAt(e, s.off); err != nil {
				return err
			}
			sum := shortChecksum(e[:11])
			for _, l := range lfn {
				l.b[13] = sum
				if _, err := v.f.WriteAt(l.b, l.off); err != nil {
					return err
				}
			}
		}
		if e[11]&0x18 == 0 && binary.LittleEndian.Uint32(e[28:]) == 0 && clusterOf(e) != 0 {
			if err := v.freeChain(clusterOf(e)); err != nil {
				return err
			}
			binary.LittleEndian.PutUint16(e[20:], 0)
			binary.LittleEndian.PutUint16(e[26:], 0)
			if _, err := v.f.WriteAt(e, s.off); err != nil {
				return err
			}
		}
		if e[11]&0x10 != 0 && name != ".          " && name != "..         " {
			if err := v.fixDir(clusterOf(e), depth+1); err != nil {
				return err
			}
		}
		lfn = nil
	}
	return nil
}

// freeChain marks the clusters of the chain starting at c free in every FAT copy.
func (v fatVolume) freeChain(c uint32) error {
	var e [4]byte
	for n := 0; c >= 2 && c < 0x0FFFFFF8; n++ {
		if n > 1<<20 {
			return errors.New("FAT cluster chain loops")
		}
		if _, err := v.f.ReadAt(e[:], v.fatOff+int64(c)*4); err != nil {
			return err
		}
		next := binary.LittleEndian.Uint32(e[:]) & 0x0FFFFFFF
		var zero [4]byte
		for i := int64(0); i < v.nfats; i++ {
			if _, err := v.f.WriteAt(zero[:], v.fatOff+i*v.fatSize+int64(c)*4); err != nil {
				return err
			}
		}
		c = next
	}
	return nil
}

func clusterOf(e []byte) uint32 {
	return uint32(binary.LittleEndian.Uint16(e[20:]))<<16 | uint32(binary.LittleEndian.Uint16(e[26:]))
}

// longName decodes the long name from its entries (stored last part first).
func longName(lfn []slot) string {
	var u []uint16
	for i := len(lfn) - 1; i >= 0; i-- {
		b := lfn[i].b
		for _, r := range [][2]int{{1, 11}, {14, 26}, {28, 32}} {
			for j := r[0]; j < r[1]; j += 2 {
				c := binary.LittleEndian.Uint16(b[j:])
				if c == 0 || c == 0xFFFF {
					return string(utf16.Decode(u))
				}
				u = append(u, c)
			}
		}
	}
	return string(utf16.Decode(u))
}

// slot is one 32-byte directory entry and its offset in the image.
type slot struct {
	off int64
	b   []byte
}

// uniqueShort derives an 8.3 alias the way Windows does for names with a leading dot:
// ".boot_repository" -> "BOOT_R~1".
func uniqueShort(long string, used map[string]bool) string {
	long = strings.TrimLeft(long, ".")
	stem, ext := long, ""
	if i := strings.LastIndex(long, "."); i >= 0 {
		stem, ext = long[:i], long[i+1:]
	}
	clean := func(s string, n int) string {
		var b strings.Builder
		for _, c := range strings.ToUpper(s) {
			if b.Len() == n {
				break
			}
			switch {
			case c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.ContainsRune("!#$%&'()-@^_`{}~", c):
				b.WriteRune(c)
			case c == ' ' || c == '.':
			default:
				b.WriteByte('_')
			}
		}
		return b.String()
	}
	stem, ext = clean(stem, 6), clean(ext, 3)
	if stem == "" {
		stem = "_"
	}
	for n := 1; ; n++ {
		tail := fmt.Sprintf("~%d", n)
		s := stem
		if len(s)+len(tail) > 8 {
			s = s[:8-len(tail)]
		}
		cand := fmt.Sprintf("%-8s%-3s", s+tail, ext)
		if !used[cand] {
			return cand
		}
	}
}

// shortChecksum is the checksum of an 8.3 name that its long-name entries record.
func shortChecksum(name []byte) byte {
	var sum byte
	for _, c := range name[:11] {
		sum = (sum&1)<<7 + sum>>1 + c
	}
	return sum
}
