package shasum

import (
	"crypto/sha1"
	"crypto/sha256"
	"math/rand/v2"
	"testing"
)

// The scalar code is tested on every amd64 machine, including ones where SHA1 and SHA256
// dispatch to the standard library.

func TestScalarLengths(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	buf := make([]byte, 4096+1)
	for i := range buf {
		buf[i] = byte(r.Uint32())
	}
	for n := 0; n <= len(buf); n++ {
		if n > 300 && n%61 != 0 && n != len(buf) {
			continue
		}
		b := buf[:n]
		if got, want := sha1Scalar(b, nil), sha1.Sum(b); got != want {
			t.Fatalf("sha1Scalar(%d bytes) = %x, want %x", n, got, want)
		}
		if got, want := sha256Scalar(b, nil), sha256.Sum256(b); got != want {
			t.Fatalf("sha256Scalar(%d bytes) = %x, want %x", n, got, want)
		}
	}
}

// TestScalarPatterns covers inputs where a wrong rotation or carry shows: all zeros, all ones,
// and single bits (FIPS 180-4's "abc" is checked by the standard library comparison too).
func TestScalarPatterns(t *testing.T) {
	var inputs [][]byte
	inputs = append(inputs, []byte("abc"), []byte("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))
	for _, n := range []int{64, 1000, 1 << 20} {
		z, o := make([]byte, n), make([]byte, n)
		for i := range o {
			o[i] = 0xFF
		}
		inputs = append(inputs, z, o)
	}
	for bit := 0; bit < 512; bit++ {
		b := make([]byte, 64)
		b[bit/8] = 1 << (bit % 8)
		inputs = append(inputs, b)
	}
	for _, b := range inputs {
		if got, want := sha1Scalar(b, nil), sha1.Sum(b); got != want {
			t.Fatalf("sha1Scalar(%x...) = %x, want %x", b[:min(len(b), 8)], got, want)
		}
		if got, want := sha256Scalar(b, nil), sha256.Sum256(b); got != want {
			t.Fatalf("sha256Scalar(%x...) = %x, want %x", b[:min(len(b), 8)], got, want)
		}
	}
}

// TestScalarYield is TestYield for the scalar code, whichever implementation is dispatched.
func TestScalarYield(t *testing.T) {
	checkYield(t, "sha1Scalar", sha1Scalar, "sha256Scalar", sha256Scalar)
}

func FuzzScalar(f *testing.F) {
	f.Add([]byte(""))
	f.Add([]byte("abc"))
	f.Add(make([]byte, 200))
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := sha1Scalar(b, nil), sha1.Sum(b); got != want {
			t.Fatalf("sha1Scalar = %x, want %x", got, want)
		}
		if got, want := sha256Scalar(b, nil), sha256.Sum256(b); got != want {
			t.Fatalf("sha256Scalar = %x, want %x", got, want)
		}
	})
}

func TestStdAccelerated(t *testing.T) {
	for _, tc := range []struct {
		name                                     string
		avx, avx2, bmi1, bmi2, ssse3, sse41, sha bool
		want                                     bool
	}{
		{name: "qemu64"},
		{name: "silvermont", ssse3: true, sse41: true},
		{name: "goldmont (SHA-NI without AVX)", ssse3: true, sse41: true, sha: true},
		{name: "haswell", avx: true, avx2: true, bmi1: true, bmi2: true, ssse3: true, sse41: true, want: true},
		{name: "zen", avx: true, avx2: true, bmi1: true, bmi2: true, ssse3: true, sse41: true, sha: true, want: true},
		{name: "sandy bridge", avx: true, ssse3: true, sse41: true},
	} {
		if got := stdAccelerated(tc.avx, tc.avx2, tc.bmi1, tc.bmi2, tc.ssse3, tc.sse41, tc.sha); got != tc.want {
			t.Errorf("stdAccelerated(%s) = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func benchmark(b *testing.B, f func([]byte)) {
	buf := make([]byte, 64<<10)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		f(buf)
	}
}

func BenchmarkSHA1Scalar(b *testing.B)   { benchmark(b, func(p []byte) { sha1Scalar(p, nil) }) }
func BenchmarkSHA1Std(b *testing.B)      { benchmark(b, func(p []byte) { sha1.Sum(p) }) }
func BenchmarkSHA256Scalar(b *testing.B) { benchmark(b, func(p []byte) { sha256Scalar(p, nil) }) }
func BenchmarkSHA256Std(b *testing.B)    { benchmark(b, func(p []byte) { sha256.Sum256(p) }) }
