package apkinstall

import (
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/ramboot/ramboot/internal/apkinstall/extract"
	"github.com/ramboot/ramboot/internal/apkinstall/pkgstream"
)

// stageMin is the smallest file a decoder stages (extract.Stage): below it the copy is cheap
// for the writer, and a descriptor per small file would only cost.
const stageMin = 8 << 10

// stager has decoders write packages' larger files ahead of the writer into unnamed files, so
// that copying contents into the root runs beside the writer instead of on its critical path,
// and a decoded data segment is recycled right after decoding.
type stager struct {
	x      *extract.Extractor
	open   atomic.Int64 // staged descriptors not yet closed
	maxFDs int64
}

// newStager returns nil where the root cannot stage.
func newStager(x *extract.Extractor) *stager {
	if !x.CanStage() {
		return nil
	}
	// A quarter of the descriptor limit: the rest stays for the writer, scripts and the
	// package files the decoders read.
	maxFDs := int64(256)
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) == nil && rl.Cur != unix.RLIM_INFINITY {
		maxFDs = min(int64(rl.Cur/4), 2048)
	}
	if maxFDs < 16 {
		return nil
	}
	return &stager{x: x, maxFDs: maxFDs}
}

// stage stages dp's larger files and, when it did, moves the remaining small contents out of
// the arena and releases it. It returns the descriptors per file (-1 = not staged; nil = none)
// and the content bytes staged. Any failure leaves the package as it was: the writer then
// meets the same condition in install order and reports it there. yield is extract.Stage's.
func (s *stager) stage(dp *pkgstream.Package, a *arena, yield func()) (fds []int, staged int64) {
	var pick []int // files to stage
	small := 0
	for i := range dp.Files {
		f := &dp.Files[i]
		if len(f.Data) >= stageMin && s.x.Stageable(f) {
			pick = append(pick, i)
		} else {
			small += len(f.Data)
		}
	}
	n := int64(len(pick))
	if n == 0 {
		return nil, 0
	}
	if s.open.Add(n) > s.maxFDs {
		s.open.Add(-n)
		return nil, 0
	}
	fds = make([]int, len(dp.Files))
	for i := range fds {
		fds[i] = -1
	}
	for k, i := range pick {
		fd, err := s.x.Stage(&dp.Files[i], yield)
		if err != nil {
			s.close(fds) // gives back the k staged so far
			s.open.Add(-(n - int64(k)))
			return nil, 0
		}
		fds[i] = fd
		staged += int64(len(dp.Files[i].Data))
	}
	// The small files' contents, copied out so the arena is free for the next package.
	buf := make([]byte, 0, small)
	for i := range dp.Files {
		f := &dp.Files[i]
		if fds[i] >= 0 {
			f.Data = nil // written; the writer links the staged file
			continue
		}
		if len(f.Data) > 0 {
			off := len(buf)
			buf = append(buf, f.Data...)
			f.Data = buf[off:len(buf):len(buf)]
		}
	}
	a.release()
	return fds, staged
}

func countOpen(fds []int) int {
	n := 0
	for _, fd := range fds {
		if fd >= 0 {
			n++
		}
	}
	return n
}

// closedBy accounts for n staged descriptors the extractor closed.
func (s *stager) closedBy(n int) {
	if s != nil {
		s.open.Add(-int64(n))
	}
}

// close closes staged descriptors (an unlinked staged file then disappears).
func (s *stager) close(fds []int) {
	for i, fd := range fds {
		if fd >= 0 {
			unix.Close(fd)
			fds[i] = -1
			s.open.Add(-1)
		}
	}
}
