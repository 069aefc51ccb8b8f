package pkgstream

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// tarEnt is what the tests compare of an entry.
type tarEnt struct {
	Name, Linkname, Uname, Gname string
	Type                         byte
	Size, Mode                   int64
	UID, GID                     int
	ModTime                      time.Time
	Devmajor, Devminor           int64
	PAX                          map[string]string
	Data                         string
}

// readOurs reads all entries with tarReader.
func readOurs(b []byte) ([]tarEnt, error) {
	var out []tarEnt
	tr := newTarReader(b)
	for {
		h, err := tr.next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		e := tarEnt{
			Name: string(h.Name), Linkname: string(h.Linkname), Uname: string(h.Uname), Gname: string(h.Gname),
			Type: h.Typeflag, Size: h.Size, Mode: h.Mode, UID: h.UID, GID: h.GID, ModTime: h.ModTime,
			Devmajor: h.Devmajor, Devminor: h.Devminor, Data: string(h.Data),
		}
		eachPAX(h.PAX, func(k, v []byte) {
			if e.PAX == nil {
				e.PAX = map[string]string{}
			}
			e.PAX[string(k)] = string(v)
		})
		out = append(out, e)
	}
}

// readStd reads all entries with archive/tar; supported is false when an entry uses what
// tarReader does not implement (sparse files, other types).
func readStd(b []byte) (ents []tarEnt, supported bool, err error) {
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return ents, true, nil
		}
		if err != nil {
			return nil, true, err
		}
		// Checked before reading: a sparse file's holes can be terabytes of zeros.
		if !strings.ContainsRune("0123456g", rune(h.Typeflag)) {
			return nil, false, nil
		}
		for k := range h.PAXRecords {
			if strings.HasPrefix(k, "GNU.sparse.") {
				return nil, false, nil
			}
		}
		d, err := io.ReadAll(tr)
		if err != nil {
			return nil, true, err
		}
		e := tarEnt{
			Name: h.Name, Linkname: h.Linkname, Uname: h.Uname, Gname: h.Gname,
			Type: h.Typeflag, Size: h.Size, Mode: h.Mode, UID: h.Uid, GID: h.Gid, ModTime: h.ModTime,
			Devmajor: h.Devmajor, Devminor: h.Devminor, Data: string(d),
		}
		if len(h.PAXRecords) > 0 {
			e.PAX = h.PAXRecords
		}
		ents = append(ents, e)
	}
}

// checkSame fails unless tarReader reads b as archive/tar does.
func checkSame(t *testing.T, b []byte) {
	t.Helper()
	want, supported, werr := readStd(b)
	if werr != nil || !supported {
		t.Fatalf("archive/tar: supported %v, error %v", supported, werr)
	}
	got, err := readOurs(b)
	if err != nil {
		t.Fatalf("tarReader: %v", err)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("tarReader differs from archive/tar (-want +got):\n%s", d)
	}
}

type tarFile struct {
	hdr  tar.Header
	data string
}

func writeTar(t testing.TB, files []tarFile, end bool) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, f := range files {
		h := f.hdr
		if h.Typeflag == tar.TypeReg && h.Size == 0 {
			h.Size = int64(len(f.data))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("WriteHeader(%s): %v", h.Name, err)
		}
		if _, err := tw.Write([]byte(f.data)); err != nil {
			t.Fatal(err)
		}
	}
	if end {
		tw.Close()
	} else {
		tw.Flush()
	}
	return b.Bytes()
}

var mtime = time.Unix(1700000000, 0)

func reg(name, data string) tarFile {
	return tarFile{tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, ModTime: mtime, Uname: "root", Gname: "root"}, data}
}

func TestTarReaderMatchesArchiveTar(t *testing.T) {
	long := strings.Repeat("very/long/directory/name/", 8) + "file"
	withPAX := func(f tarFile, recs map[string]string) tarFile {
		f.hdr.PAXRecords, f.hdr.Format = recs, tar.FormatPAX
		return f
	}
	format := func(f tarFile, fm tar.Format) tarFile {
		f.hdr.Format = fm
		return f
	}
	tests := []struct {
		name  string
		files []tarFile
		end   bool
	}{
		{"ustar with end blocks", []tarFile{
			{tar.Header{Typeflag: tar.TypeDir, Name: "etc/", Mode: 0o755, ModTime: mtime}, ""},
			reg("etc/motd", "hello\n"), reg("etc/empty", ""),
		}, true},
		{"cut (no end blocks)", []tarFile{reg("a", "x"), reg("b", strings.Repeat("y", 513))}, false},
		{"directory, symlink, hardlink, devices, fifo", []tarFile{
			{tar.Header{Typeflag: tar.TypeDir, Name: "dev/", Mode: 0o755, ModTime: mtime}, ""},
			{tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/sh", Linkname: "/bin/busybox", ModTime: mtime}, ""},
			{tar.Header{Typeflag: tar.TypeLink, Name: "bin/ash", Linkname: "bin/sh", ModTime: mtime}, ""},
			{tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Devmajor: 1, Devminor: 3, Mode: 0o666, ModTime: mtime}, ""},
			{tar.Header{Typeflag: tar.TypeBlock, Name: "dev/sda", Devmajor: 8, Devminor: 0, ModTime: mtime}, ""},
			{tar.Header{Typeflag: tar.TypeFifo, Name: "run/fifo", ModTime: mtime}, ""},
		}, true},
		{"ustar prefix", []tarFile{format(reg(long, "content"), tar.FormatUSTAR)}, true},
		{"GNU long name and link", []tarFile{
			format(reg(long, "gnu"), tar.FormatGNU),
			format(tarFile{tar.Header{Typeflag: tar.TypeSymlink, Name: "l", Linkname: long + "/target", ModTime: mtime}, ""}, tar.FormatGNU),
		}, true},
		{"PAX long name and link", []tarFile{
			withPAX(reg(long+"\u00e9", "pax"), nil),
			withPAX(tarFile{tar.Header{Typeflag: tar.TypeSymlink, Name: "l", Linkname: long + "/t\u00e9", ModTime: mtime}, ""}, nil),
		}, true},
		{"PAX checksum and xattrs", []tarFile{withPAX(reg("usr/bin/ping", "elf"), map[string]string{
			"APK-TOOLS.checksum.SHA1":   "0123456789abcdef0123456789abcdef01234567",
			"SCHILY.xattr.security.cap": "\x01\x00\x00\x02 \x00",
			"SCHILY.xattr.user.a":       "",
		})}, false},
		{"sub-second mtime", []tarFile{withPAX(tarFile{tar.Header{Typeflag: tar.TypeReg, Name: "f", ModTime: time.Unix(1700000000, 123456789)}, "x"}, nil)}, true},
		{"base-256 numbers", []tarFile{format(tarFile{tar.Header{Typeflag: tar.TypeReg, Name: "big", Uid: 1 << 30, Gid: 1 << 25,
			ModTime: time.Unix(-1000, 0), Devmajor: 1 << 22}, "z"}, tar.FormatGNU)}, true},
		{"PAX uid and size", []tarFile{withPAX(tarFile{tar.Header{Typeflag: tar.TypeReg, Name: "f", Uid: 1 << 40, Uname: strings.Repeat("u", 40), ModTime: mtime}, "abc"}, nil)}, true},
		{"global header", []tarFile{
			{tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header", PAXRecords: map[string]string{"comment": "hi", "path": "renamed"}}, ""},
			reg("after", "a"),
		}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkSame(t, writeTar(t, tc.files, tc.end))
		})
	}
}

// setField writes an octal or raw field into the header at off and fixes its checksum.
func setField(b []byte, off, at int, v []byte) {
	h := b[off : off+blockSize]
	copy(h[at:], v)
	fixChecksum(h)
}

func fixChecksum(h []byte) {
	copy(h[148:156], "        ")
	var sum int
	for _, c := range h[:blockSize] {
		sum += int(c)
	}
	copy(h[148:156], fmt.Sprintf("%06o\x00 ", sum))
}

func TestTarReaderHandMade(t *testing.T) {
	base := func() []byte { return writeTar(t, []tarFile{reg("a", "alpha"), reg("b", "beta")}, true) }
	// Signed checksum: a header byte >= 0x80 summed as negative, as old tars did.
	signed := base()
	signed[50] = 0xe9 // in the name field
	{
		h := signed[:blockSize]
		copy(h[148:156], "        ")
		var sum int
		for _, c := range h {
			sum += int(int8(c))
		}
		copy(h[148:156], fmt.Sprintf("%06o\x00 ", sum))
	}
	v7 := base()
	for _, off := range []int{0, 1024} {
		copy(v7[off+257:off+265], make([]byte, 8)) // no magic: V7
		fixChecksum(v7[off:])
	}
	regA := base()
	regA[156] = 0
	fixChecksum(regA)
	regADir := writeTar(t, []tarFile{reg("a", ""), reg("b", "beta")}, true)
	setField(regADir, 0, 0, []byte("a/\x00"))
	regADir[156] = 0
	fixChecksum(regADir)
	paddingCut := base()[:1024+512+4] // the second file's content, its padding cut
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"signed checksum", signed},
		{"V7 headers", v7},
		{"typeflag NUL", regA},
		{"typeflag NUL with slash is a directory", regADir},
		{"padding cut", paddingCut},
		{"one zero block then the end", base()[:2048+512]},
		{"empty", nil},
	} {
		t.Run(tc.name, func(t *testing.T) { checkSame(t, tc.b) })
	}
}

func TestTarReaderErrors(t *testing.T) {
	base := func() []byte { return writeTar(t, []tarFile{reg("a", "alpha"), reg("b", "beta")}, true) }
	mod := func(f func(b []byte)) []byte {
		b := base()
		f(b)
		return b
	}
	b256 := func(v int64) []byte {
		var f [12]byte
		binary.BigEndian.PutUint64(f[4:], uint64(v))
		if v < 0 {
			copy(f[:4], []byte{0xff, 0xff, 0xff, 0xff})
		}
		f[0] |= 0x80
		return f[:]
	}
	paxFile := func(rec string) []byte {
		var b bytes.Buffer
		hdr := make([]byte, blockSize)
		copy(hdr, "PaxHeaders/f")
		copy(hdr[100:], "0000644\x00")
		copy(hdr[124:], fmt.Sprintf("%011o\x00", len(rec)))
		hdr[156] = 'x'
		copy(hdr[257:], "ustar\x0000")
		fixChecksum(hdr)
		b.Write(hdr)
		b.WriteString(rec)
		b.Write(make([]byte, -len(rec)&511))
		b.Write(writeTar(t, []tarFile{reg("f", "x")}, true))
		return b.Bytes()
	}
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"bad header checksum", mod(func(b []byte) { b[1] ^= 1 }), ErrFormat},
		{"bad checksum field", mod(func(b []byte) { copy(b[148:], "abc") }), ErrFormat},
		{"bad octal size", mod(func(b []byte) { setField(b, 0, 124, []byte("0000000009\x00")) }), ErrFormat},
		{"truncated header", base()[:1024+300], ErrTruncated},
		{"truncated content", base()[:1024+512+2], ErrTruncated},
		{"size past end", mod(func(b []byte) { setField(b, 1024, 124, []byte("77777777777\x00")) }), ErrTruncated},
		{"negative size", mod(func(b []byte) { setField(b, 0, 124, b256(-5)) }), ErrFormat},
		{"huge size", mod(func(b []byte) { setField(b, 0, 124, b256(1<<62)) }), ErrTruncated},
		{"base-256 overflow", mod(func(b []byte) { setField(b, 0, 124, bytes.Repeat([]byte{0xbf}, 12)) }), ErrFormat},
		{"zero block then header", mod(func(b []byte) { copy(b[:blockSize], make([]byte, blockSize)) }), ErrFormat},
		{"zero block then cut", append(make([]byte, blockSize), 1, 2, 3), ErrTruncated},
		{"PAX record length too big", paxFile("99 path=x\n"), ErrFormat},
		{"PAX record length not a number", paxFile("1x path=x\n"), ErrFormat},
		{"PAX record length short", paxFile("4 a=\n"), ErrFormat},
		{"PAX record without newline", paxFile("11 path=xy_"), ErrFormat},
		{"PAX record without key", paxFile("7 =abc\n"), ErrFormat},
		{"PAX path with NUL", paxFile("9 path=\x00\n"), ErrFormat},
		{"PAX bad uid", paxFile("10 uid=1a\n"), ErrFormat},
		{"PAX bad mtime", paxFile("13 mtime=1.x\n"), ErrFormat},
		{"PAX negative size", paxFile("11 size=-1\n"), ErrFormat},
		{"PAX huge size", paxFile("24 size=999999999999999\n"), ErrTruncated},
		{"PAX header too long", mod(func(b []byte) {
			b[156] = 'x'
			setField(b, 0, 124, b256(2<<20))
		}), ErrFormat},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readOurs(tc.b)
			if !errors.Is(err, tc.want) {
				t.Fatalf("tarReader error = %v, want %v", err, tc.want)
			}
			if _, _, werr := readStd(tc.b); werr == nil && !strings.HasPrefix(tc.name, "PAX huge") {
				t.Errorf("archive/tar accepts it")
			}
		})
	}
}

// The word-wise checksums equal the byte-wise sums archive/tar computes.
func TestBlockSums(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	var b [blockSize]byte
	for i := 0; i < 2000; i++ {
		switch i % 3 {
		case 0:
			rng.Read(b[:])
		case 1:
			for j := range b {
				b[j] = 0xff
			}
		default:
			b = [blockSize]byte{}
			b[rng.Intn(blockSize)] = byte(rng.Intn(256))
		}
		var raw, u, s int64
		for j, c := range b {
			raw += int64(c)
			if j >= 148 && j < 156 {
				c = ' '
			}
			u += int64(c)
			s += int64(int8(c))
		}
		if r, gu, gs := blockSums(&b); r != raw || gu != u || gs != s {
			t.Fatalf("blockSums = %d %d %d, want %d %d %d", r, gu, gs, raw, u, s)
		}
	}
}

func TestParseDecimal(t *testing.T) {
	for _, s := range []string{"0", "+7", "-7", "9223372036854775807", "9223372036854775808", "-9223372036854775808",
		"-9223372036854775809", "99999999999999999999", "", "+", "-", "1_0", " 1", "0x10", "007"} {
		want, werr := strconv.ParseInt(s, 10, 64)
		got, ok := parseDecimal([]byte(s))
		if ok != (werr == nil) || ok && got != want {
			t.Errorf("parseDecimal(%q) = %d, %v; strconv: %d, %v", s, got, ok, want, werr)
		}
	}
}

// Arbitrary input never panics; whatever archive/tar reads in full (with the types and
// features apk packages use), tarReader reads the same.
func FuzzTarReader(f *testing.F) {
	long := strings.Repeat("d/", 70) + "f"
	f.Add(writeTar(f, []tarFile{reg("a", "alpha"), {tar.Header{Typeflag: tar.TypeDir, Name: "b/", ModTime: mtime}, ""}}, true), true)
	f.Add(writeTar(f, []tarFile{{tar.Header{Typeflag: tar.TypeReg, Name: long, ModTime: mtime, Format: tar.FormatGNU}, "g"},
		{tar.Header{Typeflag: tar.TypeSymlink, Name: "s", Linkname: long, ModTime: mtime, Format: tar.FormatGNU}, ""}}, false), true)
	f.Add(writeTar(f, []tarFile{{tar.Header{Typeflag: tar.TypeReg, Name: long + "\u00e9", ModTime: time.Unix(5, 5),
		PAXRecords: map[string]string{"APK-TOOLS.checksum.SHA1": "00", "SCHILY.xattr.a": "b"}}, "pax"}}, false), true)
	f.Add(writeTar(f, []tarFile{{tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "g", PAXRecords: map[string]string{"x": "y"}}, ""},
		{tar.Header{Typeflag: tar.TypeChar, Name: "c", Devmajor: 1 << 22, Uid: 1 << 30, ModTime: mtime, Format: tar.FormatGNU}, ""}}, true), false)
	f.Fuzz(func(t *testing.T, b []byte, fix bool) {
		if fix {
			// Mutations rarely keep a header checksum right: fix every block's, so that the
			// fuzzer gets past it (content blocks take the change like any other bytes).
			for off := 0; off+blockSize <= len(b); off += blockSize {
				if raw, _, _ := blockSums((*[blockSize]byte)(b[off:])); raw != 0 {
					fixChecksum(b[off:])
				}
			}
		}
		got, err := readOurs(b)
		want, supported, werr := readStd(b)
		if werr != nil || !supported {
			return
		}
		if err != nil {
			t.Fatalf("tarReader: %v; archive/tar reads %d entries", err, len(want))
		}
		for i := range want {
			if i < len(got) && want[i].Type == tar.TypeXGlobalHeader {
				// archive/tar merges a global header's records in map order and stops at a bad
				// one, so its name is not deterministic then.
				got[i].Name = want[i].Name
			}
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Fatalf("tarReader differs from archive/tar (-want +got):\n%s", d)
		}
	})
}

// PAX records in any order (archive/tar's Writer sorts them; other writers need not): the
// file's xattrs come out sorted, a repeated one with its last value, an empty one kept.
func TestFileXattrs(t *testing.T) {
	rec := paxRecord
	pax := rec("SCHILY.xattr.user.z", "1") + rec("SCHILY.xattr.security.capability", "\x01\x00") +
		rec("APK-TOOLS.checksum.SHA1", "da39a3ee5e6b4b0d3255bfef95601890afd80709") +
		rec("SCHILY.xattr.user.z", "2") + rec("SCHILY.xattr.user.empty", "") + rec("comment", "ignored")
	var fb fileBuilder
	f, err := fb.file(&tarHeader{Name: []byte("f"), Typeflag: typeReg, PAX: []byte(pax), Data: []byte{}})
	if err != nil {
		t.Fatal(err)
	}
	want := []Xattr{{"security.capability", []byte("\x01\x00")}, {"user.empty", []byte{}}, {"user.z", []byte("2")}}
	if d := cmp.Diff(want, f.Xattrs); d != "" {
		t.Errorf("xattrs (-want +got):\n%s", d)
	}
	if len(f.Checksum) != 20 {
		t.Errorf("checksum = %x", f.Checksum)
	}
}

// paxRecord formats one "%d %s=%s\n" record (as archive/tar's formatPAXRecord).
func paxRecord(k, v string) string {
	size := len(k) + len(v) + 3
	size += len(strconv.Itoa(size))
	r := strconv.Itoa(size) + " " + k + "=" + v + "\n"
	if len(r) != size {
		r = strconv.Itoa(len(r)) + " " + k + "=" + v + "\n"
	}
	return r
}
