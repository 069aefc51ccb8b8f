package apkinstall

import (
	"math/rand"
	"testing"
)

// TestRegion carves and returns random sizes in random order and checks that live carves
// never overlap, that every carve fits the request, and that the region coalesces back to one
// free span.
func TestRegion(t *testing.T) {
	const size = 1 << 20
	r := newRegion(size)
	rng := rand.New(rand.NewSource(1))
	type carve struct {
		b       []byte
		off, n  int
		regular bool
	}
	var live []carve
	owner := make([]int, size) // which live carve (id+1) covers each byte
	id := 0
	for step := 0; step < 5000; step++ {
		if len(live) > 0 && rng.Intn(2) == 0 {
			k := rng.Intn(len(live))
			c := live[k]
			live = append(live[:k], live[k+1:]...)
			if c.regular {
				for i := c.off; i < c.off+c.n; i++ {
					owner[i] = 0
				}
				r.put(c.off, c.n)
			}
			continue
		}
		n := rng.Intn(200 << 10)
		b, off, ok := r.get(n)
		if len(b) != n {
			t.Fatalf("get(%d) returned %d bytes", n, len(b))
		}
		id++
		if ok {
			for i := off; i < off+n; i++ {
				if owner[i] != 0 {
					t.Fatalf("get(%d) = offset %d overlapping carve %d at %d", n, off, owner[i], i)
				}
				owner[i] = id
			}
			// Writing the carve must land in the region at off.
			for i := range b {
				b[i] = byte(id)
			}
			if n > 0 && r.mem[off] != byte(id) {
				t.Fatalf("get(%d) = slice not backed by region offset %d", n, off)
			}
		}
		live = append(live, carve{b, off, n, ok})
	}
	for _, c := range live {
		if c.regular {
			r.put(c.off, c.n)
		}
	}
	if len(r.free) != 1 || r.free[0] != (span{0, size}) {
		t.Errorf("free list after returning everything = %v, want [{0 %d}]", r.free, size)
	}
}

func TestRegionOverflowUsesHeap(t *testing.T) {
	r := newRegion(64 << 10)
	if _, _, ok := r.get(48 << 10); !ok {
		t.Fatal("get(48 KiB) from a 64 KiB region: not from the region")
	}
	b, _, ok := r.get(32 << 10)
	if ok || len(b) != 32<<10 {
		t.Errorf("get(32 KiB) with 16 KiB free = %d bytes, from region %v; want 32768 from the heap", len(b), ok)
	}
}
