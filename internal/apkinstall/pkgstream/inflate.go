package pkgstream

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/bits"
	"sync"
	"unsafe"
)

// inflate decodes one raw DEFLATE stream (RFC 1951) from src into dst, which must be exactly
// the size of the decoded data (the gzip trailer's ISIZE tells it). It returns the number of
// input bytes consumed.
//
// Why not compress/flate: the data segment's decoded size is known up front, so decoding
// straight into one buffer avoids the sliding-window copy and the io.Reader plumbing, and lets
// the tar parser hand out file contents without copying them again. The installer only feeds
// it data whose SHA-256 already matched the signed chain, and every access is bounds-checked
// (on amd64, the fast loop is assembly without bounds checks: it keeps the Go loop's slack
// checks, and tests run it against guard pages and compare it with the Go loop).
func inflate(dst, src []byte) (int, error) { return inflateYield(dst, src, false, nil) }

// inflateMode is inflate; goOnly turns the assembly fast loop off (tests compare both).
func inflateMode(dst, src []byte, goOnly bool) (int, error) {
	return inflateYield(dst, src, goOnly, nil)
}

// inflateYield is inflateMode calling yield (if not nil) before each deflate block.
func inflateYield(dst, src []byte, goOnly bool, yield func()) (int, error) {
	d := getInflater(dst, src, false, goOnly)
	defer putInflater(d)
	d.yield = yield
	if err := d.run(); err != nil {
		return 0, err
	}
	if c := d.consumed(); c <= len(src) {
		return c, nil
	}
	return 0, errInflate // truncated: decoding relied on bytes past the end
}

// inflateUpTo is inflate for a stream whose decoded size is not known: dst only bounds it. It
// returns the bytes written and the input consumed. With errInflateShort dst was too small,
// and dst[:n] holds the start of the output (as it does for other errors, up to the damage).
// errInflateEOF means the stream needs input past the end of src.
//
// Its callers decode the signature and control members, which are not authenticated yet (the
// control member's hash is taken over the bytes this decoding delimits): that input only ever
// meets the bounds-checked Go loop, never the assembly. The members are small.
func inflateUpTo(dst, src []byte) (n, consumed int, err error) {
	return inflateUpToMode(dst, src, true)
}

func inflateUpToMode(dst, src []byte, goOnly bool) (n, consumed int, err error) {
	d := getInflater(dst, src, true, goOnly)
	defer putInflater(d)
	err = d.run()
	switch {
	case err == errInflateShort:
	case err != nil && d.overrun > 0:
		// Zero bits stood in for input past the end: whatever went wrong, the stream was cut.
		err = errInflateEOF
	case err == nil && d.consumed() > len(src):
		err = errInflateEOF
	}
	if err != nil {
		return d.n, 0, err
	}
	return d.n, d.consumed(), nil
}

// Pooled: the tables are 66 KB, which would otherwise be zeroed (on the stack) per call.
var inflaters = sync.Pool{New: func() any { return new(inflater) }}

// getInflater takes a decoder from the pool, set up to decode src into dst.
func getInflater(dst, src []byte, upTo, goOnly bool) *inflater {
	d := inflaters.Get().(*inflater)
	// Capacity = length: word loads and stores are checked against the capacity.
	d.in, d.out = src[:len(src):len(src)], dst[:len(dst):len(dst)]
	d.pos, d.bitbuf, d.bitsleft, d.overrun, d.n = 0, 0, 0, 0, 0
	d.upTo, d.goOnly = upTo, goOnly
	return d
}

// putInflater returns d to the pool without references to the caller's buffers.
func putInflater(d *inflater) {
	d.in, d.out, d.yield = nil, nil, nil
	inflaters.Put(d)
}

var (
	errInflate      = errors.New("corrupt deflate stream")
	errInflateShort = errors.New("deflate output larger than announced")
	errInflateLong  = errors.New("deflate output smaller than announced")
	errInflateEOF   = errors.New("deflate stream cut short")
)

type inflater struct {
	in       []byte
	pos      int    // next input byte to load into the bit buffer
	bitbuf   uint64 // low bits are next
	bitsleft uint   // valid bits in bitbuf
	overrun  int    // zero bytes fed past the end of input
	out      []byte
	n        int  // bytes written to out
	upTo     bool // out only bounds the output (inflateUpTo)
	goOnly   bool // never the assembly fast loop (tests)
	yield    func()

	// litlen and dist are adjacent: the assembly fast loop addresses both from one pointer.
	litlen  [tableSize]uint32
	dist    [tableSize]uint32
	codelen [1 << clBits]uint32
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
		if d.yield != nil {
			d.yield()
		}
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
			if d.n != len(d.out) && !d.upTo {
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
		return errInflateEOF
	}
	if d.n+int(ln) > len(d.out) {
		return errInflateShort
	}
	copy(d.out[d.n:], d.in[d.pos:d.pos+int(ln)])
	d.n += int(ln)
	d.pos += int(ln)
	return nil
}

var clOrder = [19]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}

// fixedLens are the code lengths of the fixed litlen (288) and distance (30) codes.
var fixedLens = func() (l [288 + 30]uint8) {
	for i := range l {
		switch {
		case i < 144:
			l[i] = 8
		case i < 256:
			l[i] = 9
		case i < 280:
			l[i] = 7
		case i < 288:
			l[i] = 8
		default:
			l[i] = 5
		}
	}
	return l
}()

func (d *inflater) fixedTables() {
	// Fixed codes are complete except for the unused symbols 286-287 and 30-31, which the
	// builder accepts as the standard does.
	build(d.litlen[:], fixedLens[:288], llBits, litlenEntries[:], entryExc, false)
	build(d.dist[:], fixedLens[288:], distBits, distEntries[:], entryExc, true)
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
	if !build(d.codelen[:], cl[:], clBits, symEntries[:], 0, false) {
		return errInflate
	}
	var lens [286 + 30]uint8
	for i := 0; i < hlit+hdist; {
		sym, err := d.decodeCodelen()
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
	if !build(d.litlen[:], lens[:hlit], llBits, litlenEntries[:], entryExc, false) ||
		!build(d.dist[:], lens[hlit:hlit+hdist], distBits, distEntries[:], entryExc, true) {
		return errInflate
	}
	return nil
}

// decodeCodelen reads one code length code symbol (at most 7 bits, no subtables).
func (d *inflater) decodeCodelen() (uint32, error) {
	if d.bitsleft < 15 {
		d.refill()
	}
	e := d.codelen[d.bitbuf&(1<<clBits-1)]
	n := uint(e & 0xff)
	if n == 0 {
		return 0, errInflate
	}
	d.bitbuf >>= n
	d.bitsleft -= n
	return e >> 16, nil
}

// Table entries (uint32), after libdeflate: everything a symbol needs comes from one lookup.
//
//	bits 0-7   bits to consume: the code length; for distances plus the extra bits, which
//	           are read before consuming
//	bits 8-11  extra-bit count (lengths); code length, to find the extra bits above it
//	           (distances); index bits (subtable pointers)
//	bit 13     end of block (with entryExc)
//	bit 14     subtable pointer (with entryExc); consumes nothing
//	bit 15     exceptional: end of block, subtable pointer or an invalid code
//	bits 16-30 literal byte, length or distance base, code length symbol, or subtable start
//	bit 31     literal (so the hot loop's first test is a sign test)
const (
	entryEOB = 1 << 13
	entrySub = 1 << 14
	entryExc = 1 << 15
	entryLit = 1 << 31
)

// Primary table bits. A code longer than that goes through a subtable of 2^(maxlen-bits)
// entries (maxlen: the longest code in that table), one per distinct primary prefix.
const (
	llBits   = 11
	distBits = 9
	clBits   = 7 // code length codes are at most 7 bits: no subtables
)

// tableSize bounds a table: litlen 2048 + 288*16, distance 512 + 30*64, both < 8192.
// Indexing under tableMask keeps lookups free of bounds checks.
const (
	tableSize = 1 << 13
	tableMask = tableSize - 1
)

// Per-symbol entries without the code length (RFC 1951 3.2.5 for the bases and extra bits);
// build adds it. Distance extra-bit counts sit in the low bits, so adding the code length
// there gives the bits to consume; length extra-bit counts sit in bits 8-11.
var litlenEntries, distEntries, symEntries = func() (ll [288]uint32, ds [32]uint32, sy [19]uint32) {
	lenBase := [29]uint32{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	dstBase := [30]uint32{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	for i := range ll {
		switch {
		case i < 256:
			ll[i] = entryLit | uint32(i)<<16
		case i == 256:
			ll[i] = entryExc | entryEOB
		case i < 286:
			j := i - 257
			extra := uint32(0)
			if j >= 8 && j < 28 {
				extra = uint32(j/4 - 1)
			}
			ll[i] = lenBase[j]<<16 | extra<<8
		default:
			ll[i] = entryExc // 286, 287: valid codes in the fixed table, invalid symbols
		}
	}
	for i := range ds {
		if i < 30 {
			extra := uint32(0)
			if i >= 4 {
				extra = uint32(i/2 - 1)
			}
			ds[i] = dstBase[i]<<16 | extra
		} else {
			ds[i] = entryExc // 30, 31
		}
	}
	for i := range sy {
		sy[i] = uint32(i) << 16
	}
	return
}()

// build makes the decoding table t for code lengths lens (0 = unused) with a primary table
// of 2^root entries; static holds each symbol's entry without its length, invalid is the
// entry for codes no symbol has; codeLenField also puts the code length in bits 8-11
// (distance entries). It rejects over-subscribed codes; incomplete codes are allowed (their
// missing codes decode as invalid).
func build(t []uint32, lens []uint8, root uint, static []uint32, invalid uint32, codeLenField bool) bool {
	var count [16]uint16
	for _, l := range lens {
		count[l&15]++
	}
	count[0] = 0
	left := 1
	maxLen := uint(0)
	for l := 1; l < 16; l++ {
		left = left<<1 - int(count[l])
		if left < 0 {
			return false
		}
		if count[l] != 0 {
			maxLen = uint(l)
		}
	}
	// Symbols in canonical order (by length, then symbol): codes are consecutive numbers.
	var offs [16]uint16
	for l := 1; l < 15; l++ {
		offs[l+1] = offs[l] + count[l]
	}
	var sorted [288]uint16
	for sym, l := range lens {
		if l != 0 {
			sorted[offs[l&15]] = uint16(sym)
			offs[l&15]++
		}
	}
	primary := 1 << root
	// entry is symbol sym's entry for a code of length l.
	entry := func(sym uint16, l uint) uint32 {
		if codeLenField {
			return static[sym] + uint32(l)<<8 + uint32(l)
		}
		return static[sym] + uint32(l)
	}
	// The primary table grows by doubling: the entries of codes up to length l fill the
	// first 2^l slots (indexed by bit-reversed code), and a copy replicates them above.
	t[0], t[1] = invalid, invalid
	size := 2
	code, i := 0, 0
	for l := uint(1); l <= min(root, maxLen); l++ {
		if l > 1 {
			copy(t[size:2*size], t[:size])
			size *= 2
		}
		for end := i + int(count[l]); i < end; i++ {
			t[reverse(code, l)&(tableSize-1)] = entry(sorted[i], l)
			code++
		}
		code <<= 1
	}
	for ; size < primary; size *= 2 {
		copy(t[size:2*size], t[:size])
	}
	if maxLen <= root {
		return true
	}
	// Longer codes: canonical codes sharing a primary prefix are consecutive, so each
	// subtable is filled before the next one starts.
	subBits := maxLen - root
	sub := 1 << subBits
	used, prefix, base := primary, -1, 0
	for l := root + 1; l <= maxLen; l++ {
		for end := i + int(count[l]); i < end; i++ {
			rev := reverse(code, l)
			if p := rev & (primary - 1); p != prefix {
				if used+sub > len(t) {
					return false // cannot happen for a code that passed the Kraft check
				}
				prefix, base = p, used
				for j := base; j < base+sub; j++ {
					t[j] = invalid
				}
				t[p] = entryExc | entrySub | uint32(base)<<16 | uint32(subBits)<<8
				used += sub
			}
			e := entry(sorted[i], l)
			for j := rev >> root; j < sub; j += 1 << (l - root) {
				t[(base+j)&(tableSize-1)] = e
			}
			code++
		}
		code <<= 1
	}
	return true
}

// reverse returns the low n bits of c in reverse order.
func reverse(c int, n uint) int {
	return int(bits.Reverse16(uint16(c)) >> (16 - n))
}

// Masks for the primary tables.
const (
	llMask   = 1<<llBits - 1
	distMask = 1<<distBits - 1
)

// load64 and store64 access 8 bytes at i; slicing [i:i+8] costs one check against the
// capacity (the callers' slices have capacity = length).
func load64(b []byte, i int) uint64 { return binary.LittleEndian.Uint64(b[i : i+8]) }

func store64(b []byte, i int, v uint64) { binary.LittleEndian.PutUint64(b[i:i+8], v) }

// periods[d] is the smallest multiple of d (2..7) that is at least 8: the distance from which
// a word copy repeats a short match's pattern.
var periods = [8]int{0, 8, 8, 9, 8, 10, 12, 14}

// block decodes one Huffman-coded block: the hot loop. The decoder state lives in locals
// (registers) and is written back on every exit. Tables are power-of-two arrays indexed
// under a mask, so lookups need no bounds check.
func (d *inflater) block() error {
	out, n := d.out, d.n
	in, pos := d.in, d.pos
	bitbuf, bitsleft := d.bitbuf, d.bitsleft
	lt, dt := &d.litlen, &d.dist
	save := func() {
		d.n, d.pos, d.bitbuf, d.bitsleft = n, pos, bitbuf, bitsleft
	}

	// Fast loop, while there is slack on both sides: an iteration refills at most twice (each
	// loads 8 bytes and advances at most 7) and writes at most 2 literals and a 258-byte match
	// rounded up to a word (later output overwrites the excess). Refills are branchless
	// (libdeflate's): they load 8 bytes and keep 56-63 valid bits. Every consumer below stays
	// within that budget: a primary literal takes <= 11 bits, a length <= 20 (15-bit code + 5
	// extra), a distance <= 28 (15 + 13), and a lookup peeks at <= 15.
	const inSlack, outSlack = 16, 2 + 264
	inEnd, outEnd := len(in)-inSlack, len(out)-outSlack
	// Refill before checking the input slack: this refill may advance by 7 bytes.
	if bitsleft < 56 && pos+8 <= len(in) {
		bitbuf |= load64(in, pos) << (bitsleft & 63)
		pos += int(63-bitsleft) >> 3
		bitsleft |= 56
	}
	if haveFastLoop && !d.goOnly && bitsleft >= 56 && pos <= inEnd && n <= outEnd {
		// The assembly version of the loop below (inflate_amd64.s). It returns at the first
		// symbol it leaves to this code (an invalid code, a bad distance) without consuming
		// it, so the loop below re-decodes it and reports the error; or having consumed an
		// end-of-block code, in the state the loop below would return in.
		s := fastState{
			out: unsafe.SliceData(out), outLen: len(out), n: n,
			in: unsafe.SliceData(in), inLen: len(in), pos: pos,
			bitbuf: bitbuf, bitsleft: bitsleft, inEnd: inEnd, outEnd: outEnd,
		}
		status := fastLoop(&s, (*[2 * tableSize]uint32)(unsafe.Pointer(lt)))
		n, pos, bitbuf, bitsleft = s.n, s.pos, s.bitbuf, s.bitsleft
		if status == fastEOB {
			save()
			return nil
		}
		// fastSlack returns right after a refill; fastSymbol may leave fewer than 56 bits
		// (pos <= inEnd+7 here, so this refill stays inside the input).
		if bitsleft < 56 && pos+8 <= len(in) {
			bitbuf |= load64(in, pos) << (bitsleft & 63)
			pos += int(63-bitsleft) >> 3
			bitsleft |= 56
		}
	}
	if bitsleft >= 56 { // else the input is too short for the fast loop anyway
		e := lt[bitbuf&llMask] // preloaded: the next symbol's primary entry
		for pos <= inEnd && n <= outEnd {
			bitbuf >>= e & 63
			bitsleft -= uint(e & 0xff)
			if int32(e) < 0 {
				// Literal: decode up to two more before refilling (56 - 3*11 >= 11 left
				// for the preload; a non-literal among them takes <= 20).
				lit := byte(e >> 16)
				e = lt[bitbuf&llMask]
				bitbuf >>= e & 63
				bitsleft -= uint(e & 0xff)
				out[n] = lit
				n++
				if int32(e) < 0 {
					lit = byte(e >> 16)
					e = lt[bitbuf&llMask]
					bitbuf >>= e & 63
					bitsleft -= uint(e & 0xff)
					out[n] = lit
					n++
					if int32(e) < 0 {
						lit = byte(e >> 16)
						e = lt[bitbuf&llMask]
						bitbuf |= load64(in, pos) << (bitsleft & 63)
						pos += int(63-bitsleft) >> 3
						bitsleft |= 56
						out[n] = lit
						n++
						continue
					}
				}
			}
			if e&entryExc != 0 {
				if e&entrySub != 0 {
					// Subtable pointers consume nothing; the entry found covers the whole code.
					e = lt[(e>>16+uint32(bitbuf>>llBits)&(1<<(e>>8&15)-1))&tableMask]
					bitbuf >>= e & 63
					bitsleft -= uint(e & 0xff)
					if int32(e) < 0 {
						out[n] = byte(e >> 16)
						n++
						e = lt[bitbuf&llMask]
						bitbuf |= load64(in, pos) << (bitsleft & 63)
						pos += int(63-bitsleft) >> 3
						bitsleft |= 56
						continue
					}
				}
				if e&entryExc != 0 {
					save()
					if e&entryEOB != 0 {
						return nil
					}
					return errInflate // invalid code, or length symbols 286/287
				}
			}
			// Length: the code is consumed, its extra bits come next.
			lx := e >> 8 & 15
			length := int(e>>16) + int(bitbuf&(1<<lx-1))
			bitbuf >>= lx
			bitsleft -= uint(lx)
			// >= 14 bits are left: look the distance up while refilling.
			de := dt[bitbuf&distMask]
			bitbuf |= load64(in, pos) << (bitsleft & 63)
			pos += int(63-bitsleft) >> 3
			bitsleft |= 56
			if de&entryExc != 0 {
				if de&entrySub == 0 {
					save()
					return errInflate // invalid code, or distance symbols 30/31
				}
				de = dt[(de>>16+uint32(bitbuf>>distBits)&(1<<(de>>8&15)-1))&tableMask]
				if de&entryExc != 0 {
					save()
					return errInflate
				}
			}
			dist := int(de>>16) + int((bitbuf&(1<<(de&63)-1))>>(de>>8&15))
			bitbuf >>= de & 63
			bitsleft -= uint(de & 0xff)
			if dist > n {
				save()
				return errInflate
			}
			e = lt[bitbuf&llMask]
			bitbuf |= load64(in, pos) << (bitsleft & 63)
			pos += int(63-bitsleft) >> 3
			bitsleft |= 56

			// Copy in words; this may write up to 7 bytes past the end (within the slack).
			src, end := n-dist, n+length
			switch {
			case dist >= 8:
				// Each word's source ends at or before its destination starts. Two words
				// unconditionally: most matches are short.
				store64(out, n, load64(out, src))
				store64(out, n+8, load64(out, src+8))
				for n, src = n+16, src+16; n < end; n, src = n+8, src+8 {
					store64(out, n, load64(out, src))
				}
			case dist == 1:
				v := uint64(out[src]) * 0x0101010101010101
				for ; n < end; n += 8 {
					store64(out, n, v)
				}
			default:
				// Period 2..7: lay down the first 8 bytes one by one, then copy words from
				// a whole number of periods (>= 8 bytes) back.
				for i := range 8 {
					out[n+i] = out[src+i]
				}
				p := periods[dist&7]
				for n += 8; n < end; n += 8 {
					store64(out, n, load64(out, n-p))
				}
			}
			n = end
		}
	}

	// Careful loop: near the ends of input and output, one symbol at a time.
	for {
		if bitsleft < 48 {
			if pos+8 <= len(in) {
				bitbuf |= load64(in, pos) << (bitsleft & 63)
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
		// >= 48 bits: a length (<= 20) and a distance (<= 28).
		e := lt[bitbuf&llMask]
		if e&entrySub != 0 {
			e = lt[(e>>16+uint32(bitbuf>>llBits)&(1<<(e>>8&15)-1))&tableMask]
		}
		bitbuf >>= e & 63
		bitsleft -= uint(e & 0xff)
		if int32(e) < 0 {
			if n >= len(out) {
				save()
				return errInflateShort
			}
			out[n] = byte(e >> 16)
			n++
			continue
		}
		if e&entryExc != 0 {
			save()
			if e&entryEOB != 0 {
				return nil
			}
			return errInflate
		}
		lx := e >> 8 & 15
		length := int(e>>16) + int(bitbuf&(1<<lx-1))
		bitbuf >>= lx
		bitsleft -= uint(lx)
		de := dt[bitbuf&distMask]
		if de&entrySub != 0 {
			de = dt[(de>>16+uint32(bitbuf>>distBits)&(1<<(de>>8&15)-1))&tableMask]
		}
		if de&entryExc != 0 {
			save()
			return errInflate
		}
		dist := int(de>>16) + int((bitbuf&(1<<(de&63)-1))>>(de>>8&15))
		bitbuf >>= de & 63
		bitsleft -= uint(de & 0xff)
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
		if dist >= length {
			copy(out[n:end], out[src:src+length])
			n = end
		} else {
			// Overlapping: the pattern repeats with period dist; copy in growing chunks.
			for n < end {
				n += copy(out[n:end], out[src:n])
			}
		}
	}
}

// fastState is the fast loop's state, shared with the assembly (inflate_amd64.s hard-codes
// the offsets; TestFastStateLayout checks them): the locals of block().
type fastState struct {
	out      *byte // &out[0]
	outLen   int
	n        int
	in       *byte // &in[0]
	inLen    int
	pos      int
	bitbuf   uint64
	bitsleft uint
	inEnd    int // the fast loop runs while pos <= inEnd && n <= outEnd
	outEnd   int
}

// fastLoop results.
const (
	fastSlack  = 0 // slack exhausted: the careful loop takes over
	fastSymbol = 1 // stopped before a symbol the Go code handles (invalid code, bad distance)
	fastEOB    = 2 // consumed an end-of-block code
)

// The assembly finds the distance table right after the litlen table.
const _ = -(unsafe.Offsetof(inflater{}.dist) - unsafe.Offsetof(inflater{}.litlen) - 4*tableSize)

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
