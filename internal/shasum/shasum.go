// Package shasum computes one-shot SHA-1 and SHA-256 digests for the package verifier.
//
// Go 1.24 dropped the scalar amd64 assembly of crypto/sha1 and crypto/sha256: on an x86-64
// without SHA-NI and AVX2 (Silvermont/Airmont Atoms in many routers and firewalls, Goldmont
// whose SHA-NI the standard library only uses together with AVX, and QEMU's default qemu64
// CPU) both fall back to generic Go, which is 1.6× (SHA-1) and 2× (SHA-256) slower than
// scalar assembly. Verifying a boot world hashes every package byte twice (datahash over the
// compressed stream, SHA-1 per file), so there this package uses its own scalar assembly and
// everywhere else the standard library, which is then faster.
package shasum

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"hash"
)

const blockSize = 64

// Chunk is how much input SHA1Yield and SHA256Yield hash between two calls of yield (well
// under a millisecond on any CPU that boots Alpine).
const Chunk = 256 << 10

// SHA1 returns the SHA-1 digest of b.
func SHA1(b []byte) [sha1.Size]byte { return SHA1Yield(b, nil) }

// SHA256 returns the SHA-256 digest of b.
func SHA256(b []byte) [sha256.Size]byte { return SHA256Yield(b, nil) }

// SHA1Yield is SHA1, calling yield (if not nil) after every Chunk bytes of b but the last:
// hashing megabytes takes milliseconds, and the caller may want to give its CPU away
// in between.
func SHA1Yield(b []byte, yield func()) [sha1.Size]byte {
	if useScalar {
		return sha1Scalar(b, yield)
	}
	if yield == nil || len(b) <= Chunk {
		return sha1.Sum(b)
	}
	var out [sha1.Size]byte
	chunked(sha1.New(), b, yield, out[:0])
	return out
}

// SHA256Yield is SHA256 with SHA1Yield's calls of yield.
func SHA256Yield(b []byte, yield func()) [sha256.Size]byte {
	if useScalar {
		return sha256Scalar(b, yield)
	}
	if yield == nil || len(b) <= Chunk {
		return sha256.Sum256(b)
	}
	var out [sha256.Size]byte
	chunked(sha256.New(), b, yield, out[:0])
	return out
}

// chunked hashes b into h Chunk by Chunk, calling yield in between, and appends the sum to out.
func chunked(h hash.Hash, b []byte, yield func(), out []byte) {
	for len(b) > Chunk {
		h.Write(b[:Chunk])
		b = b[Chunk:]
		yield()
	}
	h.Write(b)
	h.Sum(out)
}

// Impl names the implementation in use, for reports and benchmarks.
func Impl() string {
	if useScalar {
		return "scalar-amd64"
	}
	return "std"
}

func sha1Scalar(b []byte, yield func()) (out [sha1.Size]byte) {
	h := [5]uint32{0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0}
	rest := wholeBlocks(func(p []byte) { blockSHA1(&h, p) }, b, yield)
	var tail [2 * blockSize]byte // handed to the assembly directly: it stays on the stack
	blockSHA1(&h, pad(tail[:], rest, uint64(len(b))))
	putWords(out[:], h[:])
	return out
}

func sha256Scalar(b []byte, yield func()) (out [sha256.Size]byte) {
	h := [8]uint32{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19}
	rest := wholeBlocks(func(p []byte) { blockSHA256(&h, p) }, b, yield)
	var tail [2 * blockSize]byte
	blockSHA256(&h, pad(tail[:], rest, uint64(len(b))))
	putWords(out[:], h[:])
	return out
}

// wholeBlocks feeds b's whole blocks to block, Chunk at a time with a yield in between when
// yield is set, and returns the remaining partial block.
func wholeBlocks(block func([]byte), b []byte, yield func()) []byte {
	for yield != nil && len(b) > Chunk {
		block(b[:Chunk])
		b = b[Chunk:]
		yield()
	}
	full := len(b) &^ (blockSize - 1)
	if full > 0 {
		block(b[:full])
	}
	return b[full:]
}

// putWords writes the state words big-endian into out.
func putWords(out []byte, h []uint32) {
	for i, v := range h {
		binary.BigEndian.PutUint32(out[4*i:], v)
	}
}

// pad writes rest (< 64 bytes), the 0x80 marker, zeros and the bit length into buf and returns
// the one or two final blocks (SHA-1 and SHA-256 pad alike).
func pad(buf, rest []byte, n uint64) []byte {
	k := copy(buf, rest)
	buf[k] = 0x80
	end := blockSize
	if k+1+8 > blockSize {
		end = 2 * blockSize
	}
	binary.BigEndian.PutUint64(buf[end-8:], n<<3)
	return buf[:end]
}
