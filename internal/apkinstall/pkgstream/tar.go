package pkgstream

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// A tar reader over an inflated segment held in memory. archive/tar costs a map and a few
// strings per header, and every apk file entry has two headers (its PAX 'x' header carries the
// checksum); this one parses in place and hands out slices of the input.
//
// It reads what archive/tar reads, the same way, for the formats apk packages use: ustar and
// PAX (local 'x' records, global 'g' headers returned as entries as archive/tar does), GNU 'L'
// and 'K' long names, V7 and star headers, octal and base-256 numbers, and a header checksum
// taken unsigned or signed. The archive ends at two zero blocks or at the end of the data
// (apk writes "cut" segments without end blocks). Sparse files are not supported: their
// entries come back as written, and the decoder rejects their types.

const (
	blockSize      = 512
	maxSpecialSize = 1 << 20 // PAX and GNU long-name content, as archive/tar caps it
)

// Typeflags the reader acts on.
const (
	typeRegA      = '\x00'
	typeReg       = '0'
	typeLink      = '1'
	typeSymlink   = '2'
	typeChar      = '3'
	typeBlock     = '4'
	typeDir       = '5'
	typeFifo      = '6'
	typePAX       = 'x'
	typePAXGlobal = 'g'
	typeLongName  = 'L'
	typeLongLink  = 'K'
)

// PAX record keys the reader applies.
const (
	paxPath     = "path"
	paxLinkpath = "linkpath"
	paxSize     = "size"
	paxUID      = "uid"
	paxGID      = "gid"
	paxUname    = "uname"
	paxGname    = "gname"
	paxMtime    = "mtime"
	paxAtime    = "atime"
	paxCtime    = "ctime"
)

// tarHeader is one entry with its meta headers applied. The byte slices point into the input
// or into the reader's scratch space: they are valid until the next call of next.
type tarHeader struct {
	Name, Linkname     []byte
	Typeflag           byte
	Size               int64 // as recorded; header-only types have no content whatever it says
	Mode               int64
	UID, GID           int
	ModTime            time.Time
	Uname, Gname       []byte
	Devmajor, Devminor int64
	PAX                []byte // the entry's validated PAX records (its 'x' or, for 'g', its own)
	Data               []byte // content, a slice of the input
}

// tarReader walks the tar stream in buf.
type tarReader struct {
	buf  []byte
	off  int // next header
	at   int // the header being read, for errors
	name []byte
	hdr  tarHeader
}

func newTarReader(buf []byte) *tarReader { return &tarReader{buf: buf} }

// paxRecords holds the last value of each PAX key the reader applies (archive/tar keeps
// records in a map, so a repeated key's last value wins).
type paxRecords struct {
	block                 []byte
	path, linkpath, uname []byte
	gname, size, uid, gid []byte
	mtime, atime, ctime   []byte
	hasOther              bool // any key but path and linkpath
}

// isHeaderOnly reports whether entries of type t have no content, whatever their size field
// says (archive/tar's isHeaderOnlyType).
func isHeaderOnly(t byte) bool {
	switch t {
	case typeLink, typeSymlink, typeChar, typeBlock, typeDir, typeFifo:
		return true
	}
	return false
}

// next returns the next entry, or io.EOF at the end of the archive. Errors wrap ErrFormat or
// ErrTruncated and name the entry. When only the entry's content is cut short, the header is
// returned along with the ErrTruncated error (a caller may still look at its name).
func (tr *tarReader) next() (*tarHeader, error) {
	var pax paxRecords
	var havePAX bool
	var longName, longLink []byte
	for {
		h, err := tr.header()
		if err != nil {
			return nil, err
		}
		start := tr.off + blockSize
		if h.Size < 0 && !isHeaderOnly(h.Typeflag) {
			return nil, tr.errorf(ErrFormat, h, "negative size %d", h.Size)
		}
		switch h.Typeflag {
		case typePAX, typePAXGlobal, typeLongName, typeLongLink:
			if h.Size > maxSpecialSize {
				return nil, tr.errorf(ErrFormat, h, "%c header of %d bytes", h.Typeflag, h.Size)
			}
			if h.Size > int64(len(tr.buf)-start) {
				return nil, tr.errorf(ErrTruncated, h, "%c header content extends past the end", h.Typeflag)
			}
			content := tr.buf[start : start+int(h.Size)]
			tr.skip(start, h.Size)
			switch h.Typeflag {
			case typeLongName:
				longName = cstring(content)
			case typeLongLink:
				longLink = cstring(content)
			default:
				if err := parsePAX(content, &pax); err != nil {
					return nil, tr.errorf(ErrFormat, h, "%v", err)
				}
				havePAX = true
				if h.Typeflag == typePAXGlobal {
					// archive/tar returns a global header as an entry of its own, its records
					// merged into it (merge errors ignored, as there) and into no later entry.
					tr.merge(h, &pax)
					*h = tarHeader{Name: h.Name, Typeflag: typePAXGlobal, PAX: h.PAX}
					return h, nil
				}
			}
			continue
		}
		if havePAX {
			if err := tr.merge(h, &pax); err != nil {
				return nil, err
			}
		}
		if len(longName) > 0 {
			h.Name = longName
		}
		if len(longLink) > 0 {
			h.Linkname = longLink
		}
		if h.Typeflag == typeRegA {
			if bytes.HasSuffix(h.Name, []byte("/")) {
				h.Typeflag = typeDir // legacy archives mark directories with a trailing slash
			} else {
				h.Typeflag = typeReg
			}
		}
		n := h.Size
		if isHeaderOnly(h.Typeflag) {
			n = 0
		} else if n < 0 {
			return nil, tr.errorf(ErrFormat, h, "negative size %d", n)
		}
		if n > int64(len(tr.buf)-start) {
			tr.off = len(tr.buf)
			return h, tr.errorf(ErrTruncated, h, "content of %d bytes extends past the end", n)
		}
		h.Data = tr.buf[start : start+int(n) : start+int(n)]
		tr.skip(start, n)
		return h, nil
	}
}

// skip moves past content of n bytes at start and its padding. Padding cut short by the end of
// the data ends the archive (as archive/tar does).
func (tr *tarReader) skip(start int, n int64) {
	end := start + int(n) + int(-n&(blockSize-1))
	tr.off = min(end, len(tr.buf))
}

// header parses the header block at tr.off into tr.hdr; io.EOF at the end of the archive.
func (tr *tarReader) header() (*tarHeader, error) {
	rest := len(tr.buf) - tr.off
	if rest == 0 {
		return nil, io.EOF
	}
	if rest < blockSize {
		return nil, fmt.Errorf("%w: tar header at %d cut short", ErrTruncated, tr.off)
	}
	tr.at = tr.off
	b := (*[blockSize]byte)(tr.buf[tr.off:])
	raw, unsigned, signed := blockSums(b)
	if raw == 0 { // a zero block: the end if another follows or the data ends
		if rest == blockSize {
			return nil, io.EOF
		}
		if rest < 2*blockSize {
			return nil, fmt.Errorf("%w: tar block at %d cut short", ErrTruncated, tr.off+blockSize)
		}
		if raw, _, _ := blockSums((*[blockSize]byte)(tr.buf[tr.off+blockSize:])); raw == 0 {
			tr.off = len(tr.buf)
			return nil, io.EOF
		}
		return nil, fmt.Errorf("%w: tar header at %d follows a zero block", ErrFormat, tr.off+blockSize)
	}
	h := &tr.hdr
	*h = tarHeader{Name: cstring(b[0:100])}
	if sum, ok := parseOctal(b[148:156]); !ok || (sum != unsigned && sum != signed) {
		return nil, tr.errorf(ErrFormat, h, "bad header checksum")
	}
	var p numParser
	h.Typeflag = b[156]
	h.Linkname = cstring(b[157:257])
	h.Size = p.parse(b[124:136])
	h.Mode = p.parse(b[100:108])
	h.UID = int(p.parse(b[108:116]))
	h.GID = int(p.parse(b[116:124]))
	h.ModTime = time.Unix(p.parse(b[136:148]), 0)

	magic, version := string(b[257:263]), string(b[263:265])
	var prefix []byte
	if magic == "ustar\x00" || magic == "ustar " && version == " \x00" {
		h.Uname = cstring(b[265:297])
		h.Gname = cstring(b[297:329])
		h.Devmajor = p.parse(b[329:337])
		h.Devminor = p.parse(b[337:345])
		switch {
		case magic == "ustar\x00" && string(b[508:512]) == "tar\x00": // star
			prefix = cstring(b[345:476])
			p.parse(b[476:488]) // atime, ctime: checked, not kept
			p.parse(b[488:500])
		case magic == "ustar\x00":
			prefix = cstring(b[345:500])
		default: // GNU: atime and ctime where ustar has the prefix
			var times numParser
			if b[345] != 0 {
				times.parse(b[345:357])
			}
			if b[357] != 0 {
				times.parse(b[357:369])
			}
			// Go before 1.8 wrote a ustar prefix there; archive/tar reads it back as such.
			if pre := cstring(b[345:500]); times.bad && isASCII(pre) {
				prefix = pre
			}
		}
	}
	if p.bad {
		return nil, tr.errorf(ErrFormat, h, "bad numeric field")
	}
	if len(prefix) > 0 {
		tr.name = append(append(append(tr.name[:0], prefix...), '/'), h.Name...)
		h.Name = tr.name
	}
	return h, nil
}

// merge applies PAX records to h (archive/tar's mergePAX): empty values keep the header's.
func (tr *tarReader) merge(h *tarHeader, p *paxRecords) error {
	h.PAX = p.block
	if len(p.path) > 0 {
		h.Name = p.path
	}
	if len(p.linkpath) > 0 {
		h.Linkname = p.linkpath
	}
	if !p.hasOther {
		return nil
	}
	if len(p.uname) > 0 {
		h.Uname = p.uname
	}
	if len(p.gname) > 0 {
		h.Gname = p.gname
	}
	bad := func(key string, v []byte) error {
		return tr.errorf(ErrFormat, h, "bad PAX %s %q", key, v)
	}
	for _, f := range []struct {
		key string
		v   []byte
		dst *int64
	}{{paxUID, p.uid, nil}, {paxGID, p.gid, nil}, {paxSize, p.size, &h.Size}} {
		if len(f.v) == 0 {
			continue
		}
		n, ok := parseDecimal(f.v)
		if !ok {
			return bad(f.key, f.v)
		}
		switch f.key {
		case paxUID:
			h.UID = int(n)
		case paxGID:
			h.GID = int(n)
		default:
			*f.dst = n
		}
	}
	for _, f := range []struct {
		key string
		v   []byte
	}{{paxMtime, p.mtime}, {paxAtime, p.atime}, {paxCtime, p.ctime}} {
		if len(f.v) == 0 {
			continue
		}
		t, ok := parsePAXTime(f.v)
		if !ok {
			return bad(f.key, f.v)
		}
		if f.key == paxMtime {
			h.ModTime = t
		}
	}
	return nil
}

// errorf makes an error of class cls (ErrFormat, ErrTruncated) naming the entry.
func (tr *tarReader) errorf(cls error, h *tarHeader, format string, args ...any) error {
	return fmt.Errorf("%w: tar entry %q (header at %d): %s", cls, h.Name, tr.at, fmt.Sprintf(format, args...))
}

// parsePAX validates the records of a PAX header and picks the ones the reader applies
// (archive/tar's parsePAX and parsePAXRecord, without a map).
func parsePAX(block []byte, p *paxRecords) error {
	*p = paxRecords{block: block}
	for rest := block; len(rest) > 0; {
		k, v, r, err := nextPAXRecord(rest)
		if err != nil {
			return err
		}
		rest = r
		switch string(k) {
		case paxPath:
			p.path = v
		case paxLinkpath:
			p.linkpath = v
		case paxUname:
			p.uname, p.hasOther = v, true
		case paxGname:
			p.gname, p.hasOther = v, true
		case paxUID:
			p.uid, p.hasOther = v, true
		case paxGID:
			p.gid, p.hasOther = v, true
		case paxSize:
			p.size, p.hasOther = v, true
		case paxMtime:
			p.mtime, p.hasOther = v, true
		case paxAtime:
			p.atime, p.hasOther = v, true
		case paxCtime:
			p.ctime, p.hasOther = v, true
		}
	}
	return nil
}

var errPAXRecord = errors.New("malformed PAX record")

// nextPAXRecord splits the first "%d %s=%s\n" record off b, with archive/tar's validation: a
// key is non-empty and free of NUL, and the values of path, linkpath, uname and gname are too.
func nextPAXRecord(b []byte) (key, value, rest []byte, err error) {
	sp := bytes.IndexByte(b, ' ')
	if sp < 0 {
		return nil, nil, nil, errPAXRecord
	}
	n, ok := parseDecimal(b[:sp])
	if !ok || n < 5 || n > int64(len(b)) || n <= int64(sp+1) {
		return nil, nil, nil, errPAXRecord
	}
	rec := b[sp+1 : n-1]
	if b[n-1] != '\n' {
		return nil, nil, nil, errPAXRecord
	}
	eq := bytes.IndexByte(rec, '=')
	if eq <= 0 {
		return nil, nil, nil, errPAXRecord
	}
	key, value = rec[:eq], rec[eq+1:]
	switch string(key) {
	case paxPath, paxLinkpath, paxUname, paxGname:
		if bytes.IndexByte(value, 0) >= 0 {
			return nil, nil, nil, errPAXRecord
		}
	default:
		if bytes.IndexByte(key, 0) >= 0 {
			return nil, nil, nil, errPAXRecord
		}
	}
	return key, value, b[n:], nil
}

// eachPAX calls fn for every record of a block parsePAX accepted.
func eachPAX(block []byte, fn func(k, v []byte)) {
	for len(block) > 0 {
		k, v, r, err := nextPAXRecord(block)
		if err != nil {
			return
		}
		fn(k, v)
		block = r
	}
}

// cstring returns b up to its first NUL.
func cstring(b []byte) []byte {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return b[:i]
	}
	return b
}

// isASCII reports whether b is all 7-bit ASCII without NUL.
func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 || c == 0 {
			return false
		}
	}
	return true
}

// blockSums returns the byte sum of a header block (0 only for a zero block), and its
// unsigned and signed sums with the checksum field taken as spaces (tar writers differ in the
// signedness they used). Eight bytes at a time: bytes add up in 16-bit lanes, and the signed
// sum is the unsigned one less 256 per byte with the top bit set.
func blockSums(b *[blockSize]byte) (raw, unsigned, signed int64) {
	const lo, top = 0x00ff00ff00ff00ff, 0x0101010101010101
	var lanes, high uint64
	for i := 0; i < blockSize; i += 8 {
		w := binary.LittleEndian.Uint64(b[i:])
		lanes += w&lo + w>>8&lo // <= 64 * 510 per lane: no carry between lanes
		high += w >> 7 & top    // <= 64 per byte lane
	}
	high = high&lo + high>>8&lo
	raw = int64(fold16(lanes))
	hc := int64(fold16(high))
	// The checksum field (148..155) counts as eight spaces.
	unsigned = raw
	for _, c := range b[148:156] {
		unsigned += int64(' ') - int64(c)
		if c >= 0x80 {
			hc--
		}
	}
	return raw, unsigned, unsigned - 256*hc
}

// fold16 adds the four 16-bit lanes of x.
func fold16(x uint64) uint64 {
	return x&0xffff + x>>16&0xffff + x>>32&0xffff + x>>48
}

// numParser parses numeric header fields, remembering whether one was malformed.
type numParser struct{ bad bool }

func (p *numParser) parse(b []byte) int64 {
	n, ok := parseNumeric(b)
	if !ok {
		p.bad = true
	}
	return n
}

// parseNumeric parses an octal or base-256 (GNU) number field (archive/tar's parseNumeric).
func parseNumeric(b []byte) (int64, bool) {
	if len(b) > 0 && b[0]&0x80 != 0 {
		// Base-256: two's complement, big-endian, the top bit of the first byte a marker.
		var inv byte
		if b[0]&0x40 != 0 {
			inv = 0xff
		}
		var x uint64
		for i, c := range b {
			c ^= inv
			if i == 0 {
				c &= 0x7f
			}
			if x>>56 > 0 {
				return 0, false
			}
			x = x<<8 | uint64(c)
		}
		if x>>63 > 0 {
			return 0, false
		}
		if inv == 0xff {
			return ^int64(x), true
		}
		return int64(x), true
	}
	return parseOctal(b)
}

// parseOctal parses an octal field padded with spaces and NULs on either side, up to a NUL
// inside (archive/tar's parseOctal; values past 2^63 wrap as there).
func parseOctal(b []byte) (int64, bool) {
	for len(b) > 0 && (b[0] == ' ' || b[0] == 0) {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == 0) {
		b = b[:len(b)-1]
	}
	b = cstring(b)
	if len(b) == 0 {
		return 0, true
	}
	var x uint64
	for _, c := range b {
		if c < '0' || c > '7' || x>>61 != 0 {
			return 0, false
		}
		x = x<<3 | uint64(c-'0')
	}
	return int64(x), true
}

// parseDecimal parses a signed decimal integer as strconv.ParseInt(s, 10, 64) does.
func parseDecimal(b []byte) (int64, bool) {
	neg := false
	if len(b) > 0 && (b[0] == '+' || b[0] == '-') {
		neg = b[0] == '-'
		b = b[1:]
	}
	if len(b) == 0 {
		return 0, false
	}
	var x uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		if x > 1<<63/10 { // x*10 would pass 2^63
			return 0, false
		}
		x = x*10 + uint64(c-'0')
		if x > 1<<63 {
			return 0, false
		}
	}
	if neg {
		return -int64(x), true // -(1<<63) wraps to itself, the minimum
	}
	if x == 1<<63 {
		return 0, false
	}
	return int64(x), true
}

// parsePAXTime parses "%d[.%d]" seconds (archive/tar's parsePAXTime): nanoseconds beyond nine
// digits are dropped; a negative time subtracts its fraction.
func parsePAXTime(b []byte) (time.Time, bool) {
	ss, sn := b, []byte(nil)
	if i := bytes.IndexByte(b, '.'); i >= 0 {
		ss, sn = b[:i], b[i+1:]
	}
	secs, ok := parseDecimal(ss)
	if !ok {
		return time.Time{}, false
	}
	if len(sn) == 0 {
		return time.Unix(secs, 0), true
	}
	var nsecs int64
	for i, c := range sn {
		if c < '0' || c > '9' {
			return time.Time{}, false
		}
		if i < 9 {
			nsecs = nsecs*10 + int64(c-'0')
		}
	}
	for i := len(sn); i < 9; i++ {
		nsecs *= 10
	}
	if len(ss) > 0 && ss[0] == '-' {
		return time.Unix(secs, -nsecs), true
	}
	return time.Unix(secs, nsecs), true
}
