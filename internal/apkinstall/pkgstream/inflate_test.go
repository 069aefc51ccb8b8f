package pkgstream

import (
	"bytes"
	"compress/flate"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"sync"
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

// forEachRealMember calls check with the body of every gzip member of every real package (and
// of the index), in file order, and with compress/flate's output for it. check returns how much
// of body its decoder consumed, which locates the next member.
func forEachRealMember(t *testing.T, check func(name string, off int, body, want []byte) (consumed int)) {
	t.Helper()
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
			off += hdr + check(filepath.Base(f), off, body, stdInflate(t, body)) + 8
		}
	}
}

// Every gzip member of every real package decodes exactly as compress/flate decodes it.
func TestInflateRealPackages(t *testing.T) {
	forEachRealMember(t, func(name string, off int, body, want []byte) int {
		got := make([]byte, len(want))
		n, err := inflate(got, body)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("inflate(%s@%d) = %v, output equal %v", name, off, err, bytes.Equal(got, want))
		}
		return n
	})
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

// bitWriter writes a deflate bit stream (LSB first; Huffman codes MSB first).
type bitWriter struct {
	b     []byte
	acc   uint64
	nbits uint
}

func (w *bitWriter) bits(v uint64, n uint) {
	w.acc |= v << w.nbits
	w.nbits += n
	for w.nbits >= 8 {
		w.b = append(w.b, byte(w.acc))
		w.acc >>= 8
		w.nbits -= 8
	}
}

func (w *bitWriter) code(c uint64, n uint) {
	var r uint64
	for i := uint(0); i < n; i++ {
		r = r<<1 | c>>i&1
	}
	w.bits(r, n)
}

// fixed literal/length symbol (RFC 1951 3.2.6)
func (w *bitWriter) sym(s int) {
	switch {
	case s < 144:
		w.code(uint64(0x30+s), 8)
	case s < 256:
		w.code(uint64(0x190+s-144), 9)
	case s < 280:
		w.code(uint64(s-256), 7)
	default:
		w.code(uint64(0xc0+s-280), 8)
	}
}

// match of length 258 (symbol 285) or 3 (257) at distance dist (< 32769).
func (w *bitWriter) match(length, dist int) {
	w.sym(map[int]int{3: 257, 258: 285}[length])
	base := []int{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	c := len(base) - 1
	for base[c] > dist {
		c--
	}
	w.code(uint64(c), 5)
	if c >= 4 {
		w.bits(uint64(dist-base[c]), uint(c/2-1))
	}
}

// Long matches right before the end of the output, after literals, at every alignment and
// for every copy strategy: the word copies must never write past the output (which would
// panic) and must give compress/flate's bytes. Trailing input keeps the fast loop running.
func TestInflateMatchAtEnd(t *testing.T) {
	for _, dist := range []int{1, 2, 3, 7, 8, 9, 15, 16, 17, 20, 100, 300} {
		for pad := 0; pad < 16; pad++ {
			for k := 0; k < 4*24; k++ {
				nlit, tail := k%4, k/4
				if dist > 1+pad+258+nlit {
					continue
				}
				var w bitWriter
				w.bits(1, 1) // final
				w.bits(1, 2) // fixed codes
				for i := 0; i <= pad; i++ {
					w.sym('a' + i%26)
				}
				w.match(258, 1)
				for i := 0; i < nlit; i++ {
					w.sym('A' + i)
				}
				w.match(258, dist)
				for i := 0; i < tail; i++ {
					w.sym('z')
				}
				w.sym(256)
				w.bits(0, 7)
				src := append(w.b, bytes.Repeat([]byte{0xff}, 40)...)
				want := stdInflate(t, src)
				got := make([]byte, len(want))
				n, err := inflate(got, src)
				if err != nil || !bytes.Equal(got, want) || n != len(w.b) {
					t.Fatalf("dist %d pad %d lits %d tail %d: %d, %v, equal %v; want %d", dist, pad, nlit, tail, n, err, bytes.Equal(got, want), len(w.b))
				}
			}
		}
	}
}

// Many small streams, each ending exactly where its input ends: blocks that start near the
// end of the input must not read past it.
func TestInflateSmallStreams(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	words := []string{"lib", "usr/", "bin", ".so", "\x00\x00", "ELF", "apk", "x86_64", "\n", "musl"}
	for i := 0; i < 4000; i++ {
		var data []byte
		for len(data) < 100+rng.Intn(3000) {
			if rng.Intn(4) == 0 {
				data = append(data, byte(rng.Intn(256)))
			} else {
				data = append(data, words[rng.Intn(len(words))]...)
			}
		}
		src := deflate(t, data, 1+rng.Intn(9))
		got := make([]byte, len(data))
		n, err := inflate(got, src)
		if err != nil || !bytes.Equal(got, data) || n != len(src) {
			t.Fatalf("stream %d: %d, %v, equal %v; want %d", i, n, err, bytes.Equal(got, data), len(src))
		}
	}
}

// A block entered with an empty bit buffer 16 bytes before the end of the input (as after a
// long dynamic header): the fast loop's first refills must stay inside the input.
func TestInflateBlockNearInputEnd(t *testing.T) {
	for _, dist := range []int{2, 20, 4000, 24577} {
		var w bitWriter
		w.sym('a')
		w.sym('b')
		w.match(258, dist)
		w.match(258, dist)
		w.sym(256)
		for len(w.b) < 16 {
			w.bits(0, 8)
		}
		in := append(make([]byte, 100), w.b[:16]...)
		d := inflater{in: in[:len(in):len(in)], pos: 100, out: make([]byte, 30000), n: 25000}
		d.fixedTables()
		if err := d.block(); err != nil || d.n != 25000+2+2*258 {
			t.Errorf("dist %d: block() = %v, n = %d", dist, err, d.n)
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
		// inflateUpTo: size only bounds the output.
		n, used, err := inflateUpTo(got, src)
		switch {
		case werr == nil && len(want) <= size:
			if err != nil || n != len(want) || !bytes.Equal(got[:n], want) || used != len(src)-r.Len() {
				t.Fatalf("inflateUpTo = %d, %d, %v; compress/flate %d bytes from %d", n, used, err, len(want), len(src)-r.Len())
			}
		case werr == nil && err != errInflateShort:
			t.Fatalf("inflateUpTo into %d bytes = %v, want errInflateShort (output is %d bytes)", size, err, len(want))
		}
		// Round trip, at a level picked by size (-2 Huffman only .. 9).
		level := size%12 - 2
		comp := fuzzDeflate(src, level)
		out := make([]byte, len(src))
		if n, err := inflate(out, comp); err != nil || n != len(comp) || !bytes.Equal(out, src) {
			t.Fatalf("round trip at level %d: %d, %v, equal %v", level, n, err, bytes.Equal(out, src))
		}
	})
}

// fuzzDeflate compresses with a reused writer per level (a new one costs more than the rest
// of a fuzz iteration).
func fuzzDeflate(data []byte, level int) []byte {
	fuzzWritersMu.Lock()
	defer fuzzWritersMu.Unlock()
	var b bytes.Buffer
	w := fuzzWriters[level+2]
	if w == nil {
		w, _ = flate.NewWriter(&b, level)
		fuzzWriters[level+2] = w
	} else {
		w.Reset(&b)
	}
	w.Write(data)
	w.Close()
	return b.Bytes()
}

var (
	fuzzWritersMu sync.Mutex
	fuzzWriters   [12]*flate.Writer
)

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
	b.Run("ramboot-go", func(b *testing.B) { // the pure-Go fast loop
		b.SetBytes(total)
		start := cpuTime()
		for b.Loop() {
			for i, body := range bodies {
				if _, err := inflateMode(outs[i], body, true); err != nil {
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
