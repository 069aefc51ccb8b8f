package pkgstream

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// The signature and control members are small (a few KB inflated) and their end is only
// known once they are decoded, so they are inflated by inflateUpTo into a buffer that bounds
// their size, retried in a bigger one if it overflows. The gzip trailer is checked (CRC-32
// and size): the member boundary must be exact, and for --allow-untrusted installs the CRC is
// the only integrity check of the control member.

// Upper bounds of the inflated members: several times what apk itself accepts (signature files
// of at most 64 KiB; scripts and .PKGINFO of at most 256 KiB each), so that a hostile member
// cannot make the decoder allocate without bound before the identity check.
const (
	maxSigMember     = 1 << 20
	maxControlMember = 8 << 20
)

// errShort: the output buffer was too small for the member.
var errShort = errors.New("gzip member larger than the buffer")

// gzipHeader returns the length of the gzip member header at the start of m. A header cut
// short is ErrTruncated; anything else wrong with it is ErrFormat.
func gzipHeader(m []byte) (int, error) {
	if len(m) < 10 {
		return 0, fmt.Errorf("%w: gzip header cut short", ErrTruncated)
	}
	if m[0] != 0x1f || m[1] != 0x8b || m[2] != 8 || m[3]&0xe0 != 0 { // reserved flags must be 0
		return 0, fmt.Errorf("%w: not a gzip member", ErrFormat)
	}
	n, err := gzipHeaderLen(m)
	if err != nil {
		return 0, fmt.Errorf("%w: gzip header cut short", ErrTruncated)
	}
	if m[3]&0x02 != 0 { // FHCRC: the low 16 bits of the CRC-32 of the header before it
		if uint16(crc32.ChecksumIEEE(m[:n-2])) != binary.LittleEndian.Uint16(m[n-2:]) {
			return 0, fmt.Errorf("%w: gzip header checksum mismatch", ErrFormat)
		}
	}
	return n, nil
}

// gunzipInto inflates the gzip member at the start of m into out and checks its trailer. It
// returns the inflated length and the member's length. With errShort, out[:n] holds the start
// of the inflated data (as it does, up to the damage, for other errors).
func gunzipInto(out, m []byte) (n, end int, err error) {
	hdr, err := gzipHeader(m)
	if err != nil {
		return 0, 0, err
	}
	n, used, err := inflateUpTo(out, m[hdr:])
	switch {
	case err == errInflateShort:
		return n, 0, errShort
	case err == errInflateEOF:
		return n, 0, fmt.Errorf("%w: %v", ErrTruncated, err)
	case err != nil:
		return n, 0, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	end = hdr + used + 8
	if end > len(m) {
		return n, 0, fmt.Errorf("%w: gzip trailer cut short", ErrTruncated)
	}
	crc, size := binary.LittleEndian.Uint32(m[end-8:]), binary.LittleEndian.Uint32(m[end-4:])
	if crc32.ChecksumIEEE(out[:n]) != crc || uint32(n) != size {
		return n, 0, fmt.Errorf("%w: gzip member checksum or size mismatch", ErrFormat)
	}
	return n, end, nil
}

// gunzip inflates the gzip member at the start of m into buf, or into a new buffer up to
// twice as big each time it overflows, up to limit bytes. It returns the inflated data (which
// may alias buf) and the member's length.
func gunzip(m, buf []byte, limit int) ([]byte, int, error) {
	for {
		n, end, err := gunzipInto(buf, m)
		if err != errShort {
			return buf[:n], end, err
		}
		if len(buf) >= limit {
			return nil, 0, fmt.Errorf("%w: gzip member inflates to more than %d bytes", ErrFormat, limit)
		}
		buf = make([]byte, min(max(2*len(buf), 4096), limit))
	}
}

// memberCut reports whether the gzip member at the start of m, a data member, is cut off by
// the end of m. Only for telling a cut-off download from tampering once its hash failed: it
// streams (the member may inflate to much more than it deserves in memory then), and it reads
// the tar stream inside as it goes, as the decoder used to, so that damage the tar headers
// show first counts as tampering.
func memberCut(m []byte) bool {
	cut := func(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) }
	zr, err := gzip.NewReader(bytes.NewReader(m))
	if err != nil {
		return cut(err)
	}
	zr.Multistream(false)
	tr := tar.NewReader(zr)
	for {
		_, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err == nil {
			_, err = io.Copy(io.Discard, tr)
		}
		if err != nil {
			return cut(err)
		}
	}
	_, err = io.Copy(io.Discard, zr)
	return cut(err)
}
