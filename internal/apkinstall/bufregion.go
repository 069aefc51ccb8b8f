package apkinstall

import (
	"sort"
	"sync"

	"golang.org/x/sys/unix"
)

// region is the memory packages' data segments are inflated into: one allocation of about the
// decode budget, carved first-fit and given back as the writer finishes each package.
//
// Why one region: an install inflates tens of megabytes, and every fresh page costs a fault
// and a zeroing before the inflater can write it (about 10% of an install's CPU when each
// package had its own buffers). Reusing one budget-sized block bounds the pages touched and lets
// the kernel back it with transparent huge pages (one fault per 2 MiB).
type region struct {
	mu   sync.Mutex
	mem  []byte
	free []span // by offset, coalesced
}

type span struct{ off, n int }

// regionAlign is the carving unit: coarse enough to keep the free list short.
const regionAlign = 4 << 10

func newRegion(size int) *region {
	size = (size + regionAlign - 1) &^ (regionAlign - 1)
	r := &region{mem: make([]byte, size), free: []span{{0, size}}}
	// Best effort: without transparent huge pages the pages are faulted in one by one.
	unix.Madvise(r.mem, unix.MADV_HUGEPAGE)
	return r
}

// get returns n bytes: from the region when a free span fits (ok), else from the heap.
func (r *region) get(n int) (b []byte, off int, ok bool) {
	need := (n + regionAlign - 1) &^ (regionAlign - 1)
	if need == 0 {
		need = regionAlign
	}
	r.mu.Lock()
	for i, s := range r.free {
		if s.n < need {
			continue
		}
		off = s.off
		if s.n == need {
			r.free = append(r.free[:i], r.free[i+1:]...)
		} else {
			r.free[i] = span{s.off + need, s.n - need}
		}
		r.mu.Unlock()
		return r.mem[off : off+n : off+need], off, true
	}
	r.mu.Unlock()
	return make([]byte, n), 0, false
}

// put gives back a span get returned from the region.
func (r *region) put(off, n int) {
	need := (n + regionAlign - 1) &^ (regionAlign - 1)
	if need == 0 {
		need = regionAlign
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	i := sort.Search(len(r.free), func(i int) bool { return r.free[i].off > off })
	r.free = append(r.free, span{})
	copy(r.free[i+1:], r.free[i:])
	r.free[i] = span{off, need}
	// Coalesce with the next, then the previous neighbour.
	if i+1 < len(r.free) && r.free[i].off+r.free[i].n == r.free[i+1].off {
		r.free[i].n += r.free[i+1].n
		r.free = append(r.free[:i+1], r.free[i+2:]...)
	}
	if i > 0 && r.free[i-1].off+r.free[i-1].n == r.free[i].off {
		r.free[i-1].n += r.free[i].n
		r.free = append(r.free[:i], r.free[i+1:]...)
	}
}
