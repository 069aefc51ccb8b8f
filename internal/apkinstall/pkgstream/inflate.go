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
	d.litlen.build(l[:], 10)
	d.dist.build(ds[:], 8)
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
	if !d.codelen.build(cl[:], 7) {
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
	if !d.litlen.build(lens[:hlit], 10) || !d.dist.build(lens[hlit:hlit+hdist], 8) {
		return errInflate
	}
	return nil
}

// decode reads one symbol (used outside the hot loop).
func (d *inflater) decode(h *huffTable) (uint32, error) {
	if d.bitsleft < 15 {
		d.refill()
	}
	e := h.table[d.bitbuf&h.mask]
	if e&subtableFlag != 0 {
		e = h.table[(e>>8&0xffff)+uint32(d.bitbuf>>h.bits&(1<<(15-h.bits)-1))]
	}
	n := uint(e & 0xff)
	if n == 0 {
		return 0, errInflate
	}
	d.bitbuf >>= n
	d.bitsleft -= n
	return e >> 8, nil
}

// block decodes one Huffman-coded block: the hot loop. The decoder state lives in locals
// (registers) and is written back on every exit.
func (d *inflater) block() error {
	out, n := d.out, d.n
	in, pos := d.in, d.pos
	bitbuf, bitsleft := d.bitbuf, d.bitsleft
	ll, ds := &d.litlen, &d.dist
	llTable, dsTable := ll.table, ds.table
	llMask, dsMask := ll.mask, ds.mask
	llBits, dsBits := ll.bits, ds.bits
	llSubMask, dsSubMask := uint64(1)<<(15-llBits)-1, uint64(1)<<(15-dsBits)-1
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
		e := llTable[bitbuf&llMask]
		if e&subtableFlag != 0 {
			e = llTable[(e>>8&0xffff)+uint32(bitbuf>>llBits&llSubMask)]
		}
		cl := uint(e & 0xff)
		if cl == 0 {
			save()
			return errInflate
		}
		bitbuf >>= cl
		bitsleft -= cl
		sym := e >> 8
		if sym < 256 {
			if n >= len(out) {
				save()
				return errInflateShort
			}
			out[n] = byte(sym)
			n++
			continue
		}
		if sym == 256 {
			save()
			return nil
		}
		sym -= 257
		if sym >= 29 {
			save()
			return errInflate
		}
		// Up to 5 length extra + 15 distance code + 13 distance extra bits: 33 < 48 available.
		lx := lenExtra[sym]
		length := int(lenBase[sym]) + int(bitbuf&(1<<lx-1))
		bitbuf >>= lx
		bitsleft -= uint(lx)
		de := dsTable[bitbuf&dsMask]
		if de&subtableFlag != 0 {
			de = dsTable[(de>>8&0xffff)+uint32(bitbuf>>dsBits&dsSubMask)]
		}
		dl := uint(de & 0xff)
		dsym := de >> 8
		if dl == 0 || dsym >= 30 {
			save()
			return errInflate
		}
		bitbuf >>= dl
		bitsleft -= dl
		dx := dstExtra[dsym]
		dist := int(dstBase[dsym]) + int(bitbuf&(1<<dx-1))
		bitbuf >>= dx
		bitsleft -= uint(dx)
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

// subtableFlag marks a primary entry that points at a subtable of 2^(15-bits) entries.
const subtableFlag = 1 << 31

// huffTable decodes canonical Huffman codes: entries are sym<<8 | codeLength (0 = invalid),
// or subtableFlag | offset<<8 for codes longer than the primary index.
type huffTable struct {
	table []uint32
	bits  uint
	mask  uint64
}

// build makes the decoding table for code lengths lens (0 = unused). It rejects
// over-subscribed codes; incomplete codes are allowed (their missing codes decode as invalid).
func (h *huffTable) build(lens []uint8, bits uint) bool {
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
	if cap(h.table) >= primary {
		h.table = h.table[:primary]
		clear(h.table)
	} else {
		h.table = make([]uint32, primary, primary+64*(1<<(15-bits)))
	}
	h.bits, h.mask = bits, uint64(primary-1)
	sub := 1 << (15 - bits)
	for sym, l := range lens {
		if l == 0 {
			continue
		}
		c := next[l]
		next[l]++
		rev := reverse(uint32(c), uint(l))
		e := uint32(sym)<<8 | uint32(l)
		if uint(l) <= bits {
			for i := int(rev); i < primary; i += 1 << l {
				h.table[i] = e
			}
			continue
		}
		p := rev & uint32(primary-1)
		pe := h.table[p]
		if pe&subtableFlag == 0 {
			off := len(h.table)
			h.table = append(h.table, make([]uint32, sub)...)
			pe = subtableFlag | uint32(off)<<8
			h.table[p] = pe
		}
		base := int(pe >> 8 & 0xffff)
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
