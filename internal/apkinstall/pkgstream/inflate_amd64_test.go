//go:build linux

package pkgstream

import (
	"bytes"
	"compress/flate"
	"math/rand"
	"os"
	"sync"
	"syscall"
	"testing"
	"unsafe"
)

// The offsets inflate_amd64.s uses.
func TestFastStateLayout(t *testing.T) {
	var s fastState
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"out", unsafe.Offsetof(s.out), 0},
		{"n", unsafe.Offsetof(s.n), 16},
		{"in", unsafe.Offsetof(s.in), 24},
		{"pos", unsafe.Offsetof(s.pos), 40},
		{"bitbuf", unsafe.Offsetof(s.bitbuf), 48},
		{"bitsleft", unsafe.Offsetof(s.bitsleft), 56},
		{"inEnd", unsafe.Offsetof(s.inEnd), 64},
		{"outEnd", unsafe.Offsetof(s.outEnd), 72},
		{"dist table", unsafe.Offsetof(inflater{}.dist) - unsafe.Offsetof(inflater{}.litlen), 4 * tableSize},
	} {
		if c.got != c.want {
			t.Errorf("offset of %s = %d, inflate_amd64.s assumes %d", c.name, c.got, c.want)
		}
	}
	if !haveFastLoop {
		t.Errorf("haveFastLoop = false on amd64")
	}
}

// guarded is a buffer of up to size bytes placed against a PROT_NONE page: at the end of a
// mapping (an overrun faults) or at its start (an underrun faults).
type guarded struct {
	mem  []byte // guard | size bytes (rounded up to pages) | guard
	size int
}

func newGuarded(t testing.TB, size int) *guarded {
	page := os.Getpagesize()
	size = (size + page - 1) / page * page
	mem, err := syscall.Mmap(-1, 0, size+2*page, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mprotect(mem[:page], syscall.PROT_NONE); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mprotect(mem[page+size:], syscall.PROT_NONE); err != nil {
		t.Fatal(err)
	}
	return &guarded{mem: mem, size: size}
}

// end returns n bytes ending right before the upper guard page; start, n bytes right after
// the lower one.
func (g *guarded) end(n int) []byte {
	page := os.Getpagesize()
	return g.mem[page+g.size-n : page+g.size : page+g.size]
}

func (g *guarded) start(n int) []byte {
	page := os.Getpagesize()
	return g.mem[page : page+n : page+n]
}

// inflateBoth decodes src into a size-byte output with the assembly fast loop and the Go one,
// with input and output against guard pages (alternately after and before them), and fails
// unless both give the same result (the same error, bytes written and consumed); it returns
// the assembly's.
func inflateBoth(t testing.TB, src []byte, size int, gin, gout *guarded, atEnd bool) ([]byte, int, error) {
	t.Helper()
	place := (*guarded).end
	if !atEnd {
		place = (*guarded).start
	}
	in := place(gin, len(src))
	copy(in, src)
	out := place(gout, size)
	clear(out)
	n, err := inflateMode(out, in, false)
	want := make([]byte, size)
	wn, werr := inflateMode(want, src, true)
	if err != werr || n != wn || err == nil && !bytes.Equal(out, want) {
		t.Fatalf("inflate: asm %d, %v; Go %d, %v; output equal %v", n, err, wn, werr, bytes.Equal(out, want))
	}
	got := append([]byte(nil), out...)

	// inflateUpTo: the same bytes written, consumed count and error or not.
	clear(out)
	un, uc, uerr := inflateUpToMode(out, in, false)
	wun, wuc, wuerr := inflateUpToMode(want, src, true)
	if uerr != wuerr || un != wun || uc != wuc || !bytes.Equal(out[:un], want[:wun]) {
		t.Fatalf("inflateUpTo: asm %d, %d, %v; Go %d, %d, %v; output equal %v", un, uc, uerr, wun, wuc, wuerr, bytes.Equal(out[:un], want[:wun]))
	}
	return got, n, err
}

var (
	fuzzGuardMu               sync.Mutex
	fuzzGuardIn, fuzzGuardOut *guarded
)

// The assembly fast loop and the Go one agree on arbitrary (mostly corrupt) streams: same
// output, same consumed count, error or not; buffers sit against guard pages, so any read or
// write outside them crashes.
func FuzzInflateAsm(f *testing.F) {
	rng := rand.New(rand.NewSource(4))
	text := bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog 0123456789\n"), 40)
	random := make([]byte, 3000)
	rng.Read(random)
	mixed := append(append(append([]byte{}, text...), random...), bytes.Repeat([]byte("abcab"), 300)...)
	mixed = append(mixed, bytes.Repeat([]byte{0}, 700)...)
	for _, data := range [][]byte{text, mixed} {
		for _, level := range []int{flate.HuffmanOnly, flate.BestSpeed, 6, flate.BestCompression} {
			src := deflate(f, data, level)
			f.Add(src, len(data))
			bad := append([]byte{}, src...)
			bad[len(bad)/2] ^= 0x10
			f.Add(bad, len(data))
		}
	}
	f.Fuzz(func(t *testing.T, src []byte, size int) {
		if size < 0 || size > 1<<18 || len(src) > 1<<18 {
			return
		}
		fuzzGuardMu.Lock()
		defer fuzzGuardMu.Unlock()
		if fuzzGuardIn == nil {
			fuzzGuardIn, fuzzGuardOut = newGuarded(t, 1<<18), newGuarded(t, 1<<18)
		}
		inflateBoth(t, src, size, fuzzGuardIn, fuzzGuardOut, size&1 == 0)
	})
}

// Corrupted real packages and synthetic streams, against guard pages, both loops agree.
func TestInflateAsmCorrupt(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	var streams [][]byte
	var sizes []int
	words := []string{"lib", "usr/", "bin", ".so", "\x00\x00\x00\x00", "ELF", "apk", "x86_64", "\n", "musl"}
	for i := 0; i < 40; i++ {
		var data []byte
		for len(data) < 1000+rng.Intn(20000) {
			if rng.Intn(3) == 0 {
				data = append(data, byte(rng.Intn(256)))
			} else {
				data = append(data, words[rng.Intn(len(words))]...)
			}
		}
		streams = append(streams, deflate(t, data, rng.Intn(10)))
		sizes = append(sizes, len(data))
	}
	gin, gout := newGuarded(t, 1<<16), newGuarded(t, 1<<16)
	for i := 0; i < 4000; i++ {
		k := rng.Intn(len(streams))
		bad := append([]byte{}, streams[k]...)
		for j := 0; j < 1+rng.Intn(4); j++ {
			bad[rng.Intn(len(bad))] ^= byte(1 << rng.Intn(8))
		}
		if rng.Intn(4) == 0 {
			bad = bad[:rng.Intn(len(bad))]
		}
		size := sizes[k]
		if rng.Intn(4) == 0 {
			size = rng.Intn(size + 100)
		}
		inflateBoth(t, bad, size, gin, gout, i&1 == 0)
	}
}

// Every gzip member of every package in the repository decodes through the assembly fast loop
// to compress/flate's bytes, with input and output against guard pages.
func TestInflateRepoAsm(t *testing.T) {
	var gin, gout *guarded
	forEachRealMember(t, func(name string, off int, body, want []byte) int {
		if gin == nil || gin.size < len(body) || gout.size < len(want) {
			gin, gout = newGuarded(t, max(len(body), 1<<20)), newGuarded(t, max(len(want), 4<<20))
		}
		got, n, err := inflateBoth(t, body, len(want), gin, gout, off&1 == 0)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("inflate(%s@%d) = %v, output equal %v", name, off, err, bytes.Equal(got, want))
		}
		return n
	})
}
