package shasum

import (
	"crypto/sha1"
	"crypto/sha256"
	"math/rand/v2"
	"testing"
)

// TestSum checks the dispatched functions, whichever implementation this CPU selects.
func TestSum(t *testing.T) {
	t.Logf("implementation: %s", Impl())
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 55, 56, 63, 64, 65, 119, 120, 127, 128, 1000, 1 << 16, 1<<20 + 3} {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		if got, want := SHA1(b), sha1.Sum(b); got != want {
			t.Errorf("SHA1(%d bytes) = %x, want %x", n, got, want)
		}
		if got, want := SHA256(b), sha256.Sum256(b); got != want {
			t.Errorf("SHA256(%d bytes) = %x, want %x", n, got, want)
		}
	}
}

// yieldLengths straddle Chunk boundaries and block boundaries near them.
var yieldLengths = []int{0, 1, 1000, Chunk - 1, Chunk, Chunk + 1, Chunk + 63, 2*Chunk - 64, 2 * Chunk, 3*Chunk + 65}

// wantYields is how often the Yield functions call yield for n bytes: after each full Chunk
// but the last piece.
func wantYields(n int) int { return max(0, (n+Chunk-1)/Chunk-1) }

// TestYield checks SHA1Yield and SHA256Yield (dispatched implementation): same digests as the
// standard library, and one yield per Chunk of input but the last.
func TestYield(t *testing.T) { checkYield(t, "SHA1Yield", SHA1Yield, "SHA256Yield", SHA256Yield) }

func checkYield(t *testing.T, name1 string, sum1 func([]byte, func()) [sha1.Size]byte,
	name256 string, sum256 func([]byte, func()) [sha256.Size]byte) {
	r := rand.New(rand.NewPCG(5, 6))
	buf := make([]byte, 3*Chunk+65)
	for i := range buf {
		buf[i] = byte(r.Uint32())
	}
	for _, n := range yieldLengths {
		b := buf[:n]
		calls := 0
		if got, want := sum1(b, func() { calls++ }), sha1.Sum(b); got != want {
			t.Errorf("%s(%d bytes) = %x, want %x", name1, n, got, want)
		}
		if calls != wantYields(n) {
			t.Errorf("%s(%d bytes) yielded %d times, want %d", name1, n, calls, wantYields(n))
		}
		calls = 0
		if got, want := sum256(b, func() { calls++ }), sha256.Sum256(b); got != want {
			t.Errorf("%s(%d bytes) = %x, want %x", name256, n, got, want)
		}
		if calls != wantYields(n) {
			t.Errorf("%s(%d bytes) yielded %d times, want %d", name256, n, calls, wantYields(n))
		}
	}
}

func TestPad(t *testing.T) {
	for _, tc := range []struct {
		rest, blocks int
	}{{0, 1}, {55, 1}, {56, 2}, {63, 2}} {
		var buf [128]byte
		rest := make([]byte, tc.rest)
		for i := range rest {
			rest[i] = 0xAA
		}
		out := pad(buf[:], rest, 1000+uint64(tc.rest))
		if len(out) != tc.blocks*blockSize {
			t.Errorf("pad(%d bytes) = %d bytes, want %d", tc.rest, len(out), tc.blocks*blockSize)
			continue
		}
		if out[tc.rest] != 0x80 {
			t.Errorf("pad(%d bytes)[%d] = %#x, want 0x80", tc.rest, tc.rest, out[tc.rest])
		}
		bits := uint64(1000+tc.rest) * 8
		for i := 0; i < 8; i++ {
			if got, want := out[len(out)-1-i], byte(bits>>(8*i)); got != want {
				t.Errorf("pad(%d bytes) length byte %d = %#x, want %#x", tc.rest, i, got, want)
			}
		}
	}
}
