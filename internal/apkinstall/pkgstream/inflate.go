package pkgstream

import (
	"bytes"
	"encoding/binary"
	"errors"
)

// inflate decodes one raw DEFLATE stream (RFC 1951) from src into dst, which must be exactly
// the size of the decoded data (the gzip trailer's ISIZE tells it). It returns the number of
// input bytes consumed.
//
// Why not compress/flate: the data segment's decoded size is known up front, so decoding
// straight into one buffer avoids the sliding-window copy and the io.Reader plumbing, and lets
// the tar parser hand out file contents without copying them again. The installer only feeds
// it data whose SHA-256 already matched the signed chain, and every access is bounds-checked.
func inflate(dst, src []byte) (int, error) {
	d := inflater{in: src, out: dst}
	if err := d.run(); err != nil {
		return 0, err
	}
	if c := d.consumed(); c <= len(src) {
		return c, nil
	}
	return 0, errInflate // truncated: decoding relied on bytes past the end
}

var (
	errInflate      = errors.New("corrupt deflate stream")
	errInflateShort = errors.New("deflate output larger than announced")
	errInflateLong  = errors.New("deflate output smaller than announced")
)

type inflater struct {
	in       []byte
	pos      int    // next input byte to load into the bit buffer
	bitbuf   uint64 // low bits are next
	bitsleft uint   // valid bits in bitbuf
	overrun  int    // zero bytes fed past the end of input
	out      []byte
	n        int // bytes written to out

	litlen, dist, codelen huffTable
}

// consumed is the number of input bytes actually used (whole bytes; the stream's final partial
// byte counts as used). Above len(in) means the stream needed bytes past the end.
func (d *inflater) consumed() int {
	return d.pos - int(d.bitsleft/8)
}

// refill tops the bit buffer up to at least 56 valid bits.
func (d *inflater) refill() {
	if d.pos+8 <= len(d.in) {
		d.bitbuf |= binary.LittleEndian.Uint64(d.in[d.pos:]) << d.bitsleft
		d.pos += int(63-d.bitsleft) >> 3
		d.bitsleft |= 56
		return
	}
	for d.bitsleft <= 56 {
		if d.pos < len(d.in) {
			d.bitbuf |= uint64(d.in[d.pos]) << d.bitsleft
		} else {
			d.overrun++
		}
		d.pos++
		d.bitsleft += 8
	}
}

func (d *inflater) bits(n uint) uint32 {
	if d.bitsleft < n {
		d.refill()
	}
	v := uint32(d.bitbuf & (1<<n - 1))
	d.bitbuf >>= n
	d.bitsleft -= n
	return v
}

func (d *inflater) run() error {
	for {
		final := d.bits(1)
		switch d.bits(2) {
		case 0:
			if err := d.stored(); err != nil {
				return err
			}
		case 1:
			d.fixedTables()
			if err := d.block(); err != nil {
				return err
			}
		case 2:
			if err := d.dynamicTables(); err != nil {
				return err
			}
			if err := d.block(); err != nil {
				return err
			}
		default:
			return errInflate
		}
		if d.overrun > 16 {
			return errInflate // ran past the end of the input
		}
		if final == 1 {
			if d.n != len(d.out) {
				return errInflateLong
			}
			return nil
		}
	}
}

func (d *inflater) stored() error {
	// Drop to a byte boundary, then LEN and NLEN.
	d.bits(d.bitsleft % 8)
	ln := d.bits(16)
	nln := d.bits(16)
	if ln != ^nln&0xffff {
		return errInflate
	}
	// The bit buffer holds whole bytes now; return them to the input.
	d.pos -= int(d.bitsleft / 8)
	d.bitbuf, d.bitsleft = 0, 0
	if d.pos > len(d.in) {
		return errInflate // LEN/NLEN came from past the end
	}
	d.overrun = 0
	if d.pos+int(ln) > len(d.in) {
		return errInflate
	}
	if d.n+int(ln) > len(d.out) {
		return errInflateShort
	}
	copy(d.out[d.n:], d.in[d.pos:d.pos+int(ln)])
	d.n += int(ln)
	d.pos += int(ln)
	return nil
}

// Length and distance bases and extra bits (RFC 1951 3.2.5).
var (
	lenBase  = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lenExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	dstBase  = [30]uint32{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	dstExtra = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
	clOrder  = [19]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}
)

func (d *inflater) fixedTables() {
	var l [288]uint8
	for i := range l {
		switch {
		case i < 144:
			l[i] = 8
		case i < 256:
			l[i] = 9
		case i < 280:
			l[i] = 7
		default:
			l[i] = 8
		}
	}
	var ds [30]uint8
	for i := range ds {
		ds[i] = 5
	}
	// Fixed codes are complete except for the unused symbols 286-287 and 30-31, which the
	// builder accepts as the standard does.
	d.litlen.build(l[:], 10, kindLitLen)
	d.dist.build(ds[:], 8, kindDist)
}

func (d *inflater) dynamicTables() error {
	hlit := int(d.bits(5)) + 257
	hdist := int(d.bits(5)) + 1
	hclen := int(d.bits(4)) + 4
	if hlit > 286 || hdist > 30 {
		return errInflate
	}
	var cl [19]uint8
	for i := 0; i < hclen; i++ {
		cl[clOrder[i]] = uint8(d.bits(3))
	}
	if !d.codelen.build(cl[:], 7, kindSym) {
		return errInflate
	}
	var lens [286 + 30]uint8
	for i := 0; i < hlit+hdist; {
		sym, err := d.decode(&d.codelen)
		if err != nil {
			return err
		}
		switch {
		case sym < 16:
			lens[i] = uint8(sym)
			i++
		case sym == 16:
			if i == 0 {
				return errInflate
			}
			rep := 3 + int(d.bits(2))
			if i+rep > hlit+hdist {
				return errInflate
			}
			for ; rep > 0; rep-- {
				lens[i] = lens[i-1]
				i++
			}
		default:
			var rep int
			if sym == 17 {
				rep = 3 + int(d.bits(3))
			} else {
				rep = 11 + int(d.bits(7))
			}
			if i+rep > hlit+hdist {
				return errInflate
			}
			i += rep // already zero
		}
	}
	if lens[256] == 0 {
		return errInflate // no end-of-block code
	}
	if !d.litlen.build(lens[:hlit], 11, kindLitLen) || !d.dist.build(lens[hlit:hlit+hdist], 10, kindDist) {
		return errInflate
	}
	return nil
}

// decode reads one symbol (used outside the hot loop).
func (d *inflater) decode(h *huffTable) (uint32, error) {
	if d.bitsleft < 15 {
		d.refill()
	}
	e := h.table[d.bitbuf&h.mask&tableMask]
	if e&entrySub != 0 {
		e = h.table[(e>>entryValShift+uint32(d.bitbuf>>h.bits&h.subMask))&tableMask]
	}
	n := uint(e & entryLenMask)
	if n == 0 {
		return 0, errInflate
	}
	d.bitbuf >>= n
	d.bitsleft -= n
	return e >> entryValShift & 0xffff, nil
}

// block decodes one Huffman-coded block: the hot loop. The decoder state lives in locals
// (registers) and is written back on every exit. Table entries carry what the symbol means
// (literal byte, length or distance base with its extra-bit count), so a symbol costs one
// lookup; tables are power-of-two arrays indexed under a mask, so lookups need no bounds check.
func (d *inflater) block() error {
	out, n := d.out, d.n
	in, pos := d.in, d.pos
	bitbuf, bitsleft := d.bitbuf, d.bitsleft
	llTable, dsTable := &d.litlen.table, &d.dist.table
	llMask, dsMask := d.litlen.mask, d.dist.mask
	llBits, dsBits := d.litlen.bits, d.dist.bits
	llSubMask, dsSubMask := d.litlen.subMask, d.dist.subMask
	save := func() {
		d.n, d.pos, d.bitbuf, d.bitsleft = n, pos, bitbuf, bitsleft
	}
	for {
		if bitsleft < 48 {
			if pos+8 <= len(in) {
				bitbuf |= binary.LittleEndian.Uint64(in[pos:]) << bitsleft
				pos += int(63-bitsleft) >> 3
				bitsleft |= 56
			} else {
				save()
				d.refill()
				pos, bitbuf, bitsleft = d.pos, d.bitbuf, d.bitsleft
				if d.overrun > 16 {
					return errInflate
				}
			}
		}
		e := llTable[bitbuf&llMask&tableMask]
		if e&entrySub != 0 {
			e = llTable[(e>>entryValShift+uint32(bitbuf>>llBits&llSubMask))&tableMask]
		}
		cl := uint(e & entryLenMask)
		bitbuf >>= cl
		bitsleft -= cl
		if e&entryLit != 0 {
			if n >= len(out) {
				save()
				return errInflateShort
			}
			out[n] = byte(e >> entryValShift)
			n++
			// Most literals come in runs: a second one fits in the bits left (>= 33).
			e = llTable[bitbuf&llMask&tableMask]
			if e&entryLit == 0 {
				continue
			}
			if n >= len(out) {
				save()
				return errInflateShort
			}
			cl = uint(e & entryLenMask)
			bitbuf >>= cl
			bitsleft -= cl
			out[n] = byte(e >> entryValShift)
			n++
			continue
		}
		if e&entryLen == 0 {
			save()
			if cl != 0 && e&entryEOB != 0 {
				return nil
			}
			return errInflate // invalid code, or length symbols 286/287
		}
		// Up to 5 length extra + 15 distance code + 13 distance extra bits: 33 < 48-15 available.
		lx := uint(e >> entryExtraShift & 0xf)
		length := int(e>>entryValShift&0xffff) + int(bitbuf&(1<<lx-1))
		bitbuf >>= lx
		bitsleft -= lx
		de := dsTable[bitbuf&dsMask&tableMask]
		if de&entrySub != 0 {
			de = dsTable[(de>>entryValShift+uint32(bitbuf>>dsBits&dsSubMask))&tableMask]
		}
		dl := uint(de & entryLenMask)
		if de&entryLen == 0 {
			save()
			return errInflate // invalid code, or distance symbols 30/31
		}
		bitbuf >>= dl
		bitsleft -= dl
		dx := uint(de >> entryExtraShift & 0xf)
		dist := int(de>>entryValShift&0xffff) + int(bitbuf&(1<<dx-1))
		bitbuf >>= dx
		bitsleft -= dx
		if dist > n {
			save()
			return errInflate
		}
		end := n + length
		if end > len(out) {
			save()
			return errInflateShort
		}
		src := n - dist
		switch {
		case dist >= 8 && end+8 <= len(out):
			// Word copies; may write up to 7 bytes past end, which later output overwrites.
			for n < end {
				binary.LittleEndian.PutUint64(out[n:], binary.LittleEndian.Uint64(out[src:]))
				n += 8
				src += 8
			}
			n = end
		case dist >= length:
			copy(out[n:end], out[src:src+length])
			n = end
		default:
			// Overlapping: the pattern repeats with period dist; copy in growing chunks.
			for n < end {
				n += copy(out[n:end], out[src:n])
			}
		}
	}
}

// Table entries: code length in the low 4 bits (0 = invalid code), extra-bit count in the
// next 4, kind flags, and the value (literal byte, length or distance base, symbol, or
// subtable offset) from bit 16.
const (
	entryLenMask    = 0xf
	entryExtraShift = 4
	entryLit        = 1 << 8  // literal byte
	entryLen        = 1 << 9  // length (litlen table) or distance (distance table) with extra bits
	entryEOB        = 1 << 10 // end of block
	entrySub        = 1 << 11 // primary entry pointing at a subtable of 2^(15-bits) entries
	entryValShift   = 16
)

// tableSize bounds a table: a primary of 2^bits entries plus one subtable of 2^(15-bits)
// entries per distinct primary prefix of a longer code, at most one per symbol: litlen
// (11 bits) 2048 + 288*16, distance (10 bits) 1024 + 30*32, code lengths (7 bits, no code
// longer) 128, all < 8192. Indexing under tableMask keeps lookups free of bounds checks.
const (
	tableSize = 1 << 13
	tableMask = tableSize - 1
)

// Table kinds: what a symbol means.
const (
	kindSym    = iota // value = symbol (code length codes)
	kindLitLen        // literals, end of block, lengths
	kindDist          // distances
)

// huffTable decodes canonical Huffman codes.
type huffTable struct {
	table   [tableSize]uint32
	bits    uint
	mask    uint64
	subMask uint64
}

// entry is symbol sym's table entry (without the code length) for a table of kind.
func entry(kind int, sym int) uint32 {
	switch kind {
	case kindLitLen:
		switch {
		case sym < 256:
			return entryLit | uint32(sym)<<entryValShift
		case sym == 256:
			return entryEOB
		case sym < 286:
			i := sym - 257
			return entryLen | uint32(lenExtra[i])<<entryExtraShift | uint32(lenBase[i])<<entryValShift
		}
		return 0 // 286, 287: valid codes in the fixed table, invalid symbols
	case kindDist:
		if sym < 30 {
			return entryLen | uint32(dstExtra[sym])<<entryExtraShift | dstBase[sym]<<entryValShift
		}
		return 0
	}
	return uint32(sym) << entryValShift
}

// build makes the decoding table for code lengths lens (0 = unused). It rejects
// over-subscribed codes; incomplete codes are allowed (their missing codes decode as invalid).
func (h *huffTable) build(lens []uint8, bits uint, kind int) bool {
	var count [16]int
	for _, l := range lens {
		count[l]++
	}
	count[0] = 0
	left := 1
	for l := 1; l < 16; l++ {
		left = left<<1 - count[l]
		if left < 0 {
			return false
		}
	}
	var next [16]int // first canonical code of each length
	code := 0
	for l := 1; l < 16; l++ {
		next[l] = code
		code = (code + count[l]) << 1
	}
	primary := 1 << bits
	clear(h.table[:primary])
	used := primary
	h.bits, h.mask = bits, uint64(primary-1)
	sub := 1 << (15 - bits)
	h.subMask = uint64(sub - 1)
	for sym, l := range lens {
		if l == 0 {
			continue
		}
		c := next[l]
		next[l]++
		rev := reverse(uint32(c), uint(l))
		e := entry(kind, sym)
		if e != 0 || kind == kindSym {
			e |= uint32(l)
		}
		if uint(l) <= bits {
			for i := int(rev); i < primary; i += 1 << l {
				h.table[i] = e
			}
			continue
		}
		p := rev & uint32(primary-1)
		pe := h.table[p]
		if pe&entrySub == 0 {
			if used+sub > tableSize {
				return false // cannot happen for a code that passed the Kraft check
			}
			clear(h.table[used : used+sub])
			pe = entrySub | uint32(used)<<entryValShift
			h.table[p] = pe
			used += sub
		}
		base := int(pe >> entryValShift)
		for i := int(rev >> bits); i < sub; i += 1 << (uint(l) - bits) {
			h.table[base+i] = e
		}
	}
	return true
}

func reverse(c uint32, n uint) uint32 {
	var r uint32
	for i := uint(0); i < n; i++ {
		r = r<<1 | c&1
		c >>= 1
	}
	return r
}

// gzipHeaderLen parses a gzip member header (RFC 1952) and returns its length.
func gzipHeaderLen(b []byte) (int, error) {
	if len(b) < 10 || b[0] != 0x1f || b[1] != 0x8b || b[2] != 8 {
		return 0, errors.New("not a gzip member")
	}
	flg := b[3]
	n := 10
	if flg&0x04 != 0 { // FEXTRA
		if len(b) < n+2 {
			return 0, errInflate
		}
		n += 2 + int(binary.LittleEndian.Uint16(b[n:]))
	}
	for _, f := range []byte{0x08, 0x10} { // FNAME, FCOMMENT: zero-terminated
		if flg&f != 0 {
			i := bytes.IndexByte(b[min(n, len(b)):], 0)
			if i < 0 {
				return 0, errInflate
			}
			n += i + 1
		}
	}
	if flg&0x02 != 0 { // FHCRC
		n += 2
	}
	if n > len(b) {
		return 0, errInflate
	}
	return n, nil
}
