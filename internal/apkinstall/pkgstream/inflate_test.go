package pkgstream

import (
	"bytes"
	"compress/flate"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	kflate "github.com/klauspost/compress/flate"

	"github.com/ramboot/ramboot/internal/testdata"
)

func stdInflate(t testing.TB, src []byte) []byte {
	t.Helper()
	b, err := io.ReadAll(flate.NewReader(bytes.NewReader(src)))
	if err != nil {
		t.Fatalf("compress/flate: %v", err)
	}
	return b
}

func deflate(t testing.TB, data []byte, level int) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := flate.NewWriter(&b, level)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	w.Close()
	return b.Bytes()
}

// Every gzip member of every real package decodes exactly as compress/flate decodes it.
func TestInflateRealPackages(t *testing.T) {
	dir := testdata.Path(t, "alpine", "v3.19", "x86_64")
	files, _ := filepath.Glob(filepath.Join(dir, "*.apk"))
	files = append(files, filepath.Join(dir, "APKINDEX.tar.gz"))
	if len(files) < 100 {
		t.Fatalf("found %d packages, want 100", len(files))
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off < len(raw); {
			hdr, err := gzipHeaderLen(raw[off:])
			if err != nil {
				t.Fatalf("%s@%d: %v", f, off, err)
			}
			body := raw[off+hdr:]
			want := stdInflate(t, body)
			got := make([]byte, len(want))
			n, err := inflate(got, body)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("inflate(%s@%d) = %v, output equal %v", filepath.Base(f), off, err, bytes.Equal(got, want))
			}
			off += hdr + n + 8
		}
	}
}

func TestInflateSynthetic(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	random := make([]byte, 300000)
	rng.Read(random)
	text := bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog 0123456789\n"), 5000)
	runs := append(bytes.Repeat([]byte{'a'}, 70000), bytes.Repeat([]byte("ab"), 40000)...)
	mixed := append(append(append([]byte{}, text[:50000]...), random[:50000]...), runs...)
	for _, data := range [][]byte{nil, {0}, random, text, runs, mixed} {
		for _, level := range []int{flate.NoCompression, flate.HuffmanOnly, flate.BestSpeed, 5, flate.BestCompression} {
			src := deflate(t, data, level)
			got := make([]byte, len(data))
			n, err := inflate(got, src)
			if err != nil || !bytes.Equal(got, data) || n != len(src) {
				t.Errorf("inflate(len %d, level %d) = %d, %v, equal %v; want %d, nil, true", len(data), level, n, err, bytes.Equal(got, data), len(src))
			}
			// A wrong announced size is an error, never a silent truncation.
			if len(data) > 0 {
				if _, err := inflate(make([]byte, len(data)-1), src); err == nil {
					t.Errorf("inflate(level %d) into a short buffer: error = nil", level)
				}
				if _, err := inflate(make([]byte, len(data)+1), src); err == nil {
					t.Errorf("inflate(level %d) into a long buffer: error = nil", level)
				}
				if _, err := inflate(got, src[:len(src)/2]); err == nil {
					t.Errorf("inflate(level %d) of a truncated stream: error = nil", level)
				}
			}
		}
	}
}

// Corrupt input must give an error or wrong bytes, never a panic or a hang.
func TestInflateCorrupt(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	data := bytes.Repeat([]byte("corruption test data, somewhat compressible 42\n"), 2000)
	src := deflate(t, data, 6)
	for i := 0; i < 3000; i++ {
		bad := append([]byte{}, src...)
		for k := 0; k < 1+rng.Intn(4); k++ {
			bad[rng.Intn(len(bad))] ^= byte(1 << rng.Intn(8))
		}
		inflate(make([]byte, len(data)), bad)
	}
	for i := 0; i < 2000; i++ {
		junk := make([]byte, rng.Intn(200))
		rng.Read(junk)
		inflate(make([]byte, rng.Intn(5000)), junk)
	}
}

// Arbitrary input never panics, and whatever compress/flate decodes, inflate decodes to the
// same bytes and consumed length; src is also compressed and must round-trip.
func FuzzInflate(f *testing.F) {
	f.Add(deflate(f, []byte("hello hello hello hello"), 6), 23)
	f.Add(deflate(f, bytes.Repeat([]byte("abcabcabd"), 100), 9), 900)
	f.Fuzz(func(t *testing.T, src []byte, size int) {
		if size < 0 || size > 1<<20 {
			return
		}
		got := make([]byte, size)
		n, err := inflate(got, src)
		r := bytes.NewReader(src)
		want, werr := io.ReadAll(flate.NewReader(r))
		if werr == nil && len(want) == size {
			if err != nil || !bytes.Equal(got, want) || n != len(src)-r.Len() {
				t.Fatalf("inflate = %d, %v, equal %v; compress/flate read %d", n, err, bytes.Equal(got, want), len(src)-r.Len())
			}
		}
		if err == nil && werr == nil && !bytes.Equal(got, want) {
			t.Fatalf("inflate succeeded with other output than compress/flate")
		}
		// Round trip, at a level picked by size (-2 Huffman only .. 9).
		level := size%12 - 2
		comp := deflate(t, src, level)
		out := make([]byte, len(src))
		if n, err := inflate(out, comp); err != nil || n != len(comp) || !bytes.Equal(out, src) {
			t.Fatalf("round trip at level %d: %d, %v, equal %v", level, n, err, bytes.Equal(out, src))
		}
	})
}

func BenchmarkInflate(b *testing.B) {
	raw, err := os.ReadFile(testdata.Path(b, "alpine", "v3.19", "x86_64", "libcrypto3-3.1.4-r5.apk"))
	if err != nil {
		b.Fatal(err)
	}
	// The data member is the last one; find it like decode does.
	off := 0
	var body []byte
	for off < len(raw) {
		hdr, _ := gzipHeaderLen(raw[off:])
		body = raw[off+hdr:]
		want := stdInflate(b, body)
		got := make([]byte, len(want))
		n, _ := inflate(got, body)
		off += hdr + n + 8
	}
	want := stdInflate(b, body)
	out := make([]byte, len(want))
	b.Run("ramboot", func(b *testing.B) {
		b.SetBytes(int64(len(want)))
		start := cpuTime()
		for b.Loop() {
			if _, err := inflate(out, body); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(cpuTime()-start)/float64(b.N)/1e6, "cpu-ms/op")
	})
	b.Run("klauspost", func(b *testing.B) {
		b.SetBytes(int64(len(want)))
		start := cpuTime()
		for b.Loop() {
			if _, err := io.ReadFull(kflate.NewReader(bytes.NewReader(body)), out); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(cpuTime()-start)/float64(b.N)/1e6, "cpu-ms/op")
	})
}

// dataMembers returns the deflate body and decoded size of every real package's data member
// (the last gzip member), the mix an install actually inflates.
func dataMembers(b *testing.B) (bodies [][]byte, sizes []int, total int64) {
	dir := testdata.Path(b, "alpine", "v3.19", "x86_64")
	files, _ := filepath.Glob(filepath.Join(dir, "*.apk"))
	if len(files) < 100 {
		b.Fatalf("found %d packages, want 100", len(files))
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		var body []byte
		var size int
		for off := 0; off < len(raw); {
			hdr, err := gzipHeaderLen(raw[off:])
			if err != nil {
				b.Fatalf("%s@%d: %v", f, off, err)
			}
			want := stdInflate(b, raw[off+hdr:])
			n, err := inflate(make([]byte, len(want)), raw[off+hdr:])
			if err != nil {
				b.Fatalf("%s@%d: %v", f, off, err)
			}
			body, size = raw[off+hdr:off+hdr+n], len(want)
			off += hdr + n + 8
		}
		bodies, sizes = append(bodies, body), append(sizes, size)
		total += int64(size)
	}
	return bodies, sizes, total
}

// BenchmarkInflateRepo inflates the data member of every package in the real repository.
func BenchmarkInflateRepo(b *testing.B) {
	bodies, sizes, total := dataMembers(b)
	outs := make([][]byte, len(sizes))
	for i, s := range sizes {
		outs[i] = make([]byte, s)
	}
	b.Run("ramboot", func(b *testing.B) {
		b.SetBytes(total)
		start := cpuTime()
		for b.Loop() {
			for i, body := range bodies {
				if _, err := inflate(outs[i], body); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(cpuTime()-start)/float64(b.N)/1e6, "cpu-ms/op")
	})
	b.Run("klauspost", func(b *testing.B) {
		b.SetBytes(total)
		start := cpuTime()
		for b.Loop() {
			for i, body := range bodies {
				if _, err := io.ReadFull(kflate.NewReader(bytes.NewReader(body)), outs[i]); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(cpuTime()-start)/float64(b.N)/1e6, "cpu-ms/op")
	})
}

func cpuTime() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
