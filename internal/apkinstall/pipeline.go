package apkinstall

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/ramboot/ramboot/internal/apkinstall/db"
	"github.com/ramboot/ramboot/internal/apkinstall/pkg"
	"github.com/ramboot/ramboot/internal/apkinstall/pkgstream"
	"github.com/ramboot/ramboot/internal/apkinstall/solver"
)

// sequencer runs the commit's output and package scripts on one goroutine, strictly in the
// order they were queued, so the writer can extract the next packages while a post-install
// script runs (scripts are fork+exec+chroot: tens of milliseconds each under emulation). Output
// order stays exactly apk's. The writer calls wait before anything that must see every earlier
// script's effects (a pre-install script, files owned by users scripts may create, triggers).
type sequencer struct {
	ch   chan func()
	done chan struct{}
}

func newSequencer() *sequencer {
	s := &sequencer{ch: make(chan func(), 64), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for f := range s.ch {
			f()
		}
	}()
	return s
}

// later queues f behind everything queued before it.
func (s *sequencer) later(f func()) { s.ch <- f }

// wait returns once everything queued so far has run.
func (s *sequencer) wait() {
	c := make(chan struct{})
	s.ch <- func() { close(c) }
	<-c
}

// stop runs what is queued and ends the goroutine.
func (s *sequencer) stop() {
	close(s.ch)
	<-s.done
}

// decoded is one package's decode outcome, delivered to the writer in install order.
type decoded struct {
	p      *pkgstream.Package
	err    error
	cost   int64
	arena  *arena // backs p's file contents; returned to the pool once written
	staged []int  // per file: the descriptor of its staged content, or -1; nil = none staged
}

// arena is one package's pkgstream.Allocator; release gives its buffers back once the
// package's files are written.
type arena struct {
	mem   *region
	spans []span
}

func (a *arena) Alloc(n int) []byte {
	b, off, ok := a.mem.get(n)
	if ok {
		a.spans = append(a.spans, span{off, n})
	}
	return b
}

func (a *arena) release() {
	if a == nil {
		return
	}
	for _, s := range a.spans {
		a.mem.put(s.off, s.n)
	}
	a.spans = nil
}

// budget is a byte semaphore acquired strictly in install order (by one dispatcher), so a later
// package can never starve the one the writer is waiting for.
type budget struct {
	mu    sync.Mutex
	cond  *sync.Cond
	avail int64
}

func newBudget(n int64) *budget {
	b := &budget{avail: n}
	b.cond = sync.NewCond(&b.mu)
	return b
}

func (b *budget) acquire(ctx context.Context, n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.avail < n {
		if ctx.Err() != nil {
			return false
		}
		b.cond.Wait()
	}
	b.avail -= n
	return true
}

// tryAcquire takes n if that much is available now.
func (b *budget) tryAcquire(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.avail < n {
		return false
	}
	b.avail -= n
	return true
}

func (b *budget) release(n int64) {
	b.mu.Lock()
	b.avail += n
	b.mu.Unlock()
	b.cond.Broadcast()
}

type job struct {
	i    int // index in the changes
	cost int64
}

// jobQueue holds the packages admitted under the memory budget (in install order) until a
// worker takes one.
type jobQueue struct {
	mu      sync.Mutex
	cond    *sync.Cond
	pending []job
	closed  bool
	// settled: the dispatcher's first burst is over (it admitted everything, or waits for
	// budget). bigTaken: a bigFirst taker has made its first choice.
	settled, bigTaken bool
	// need is the index of the change the writer wants next; bigFirst takers go for the
	// costliest package only while the writer's next few are all taken.
	need atomic.Int64
}

// aheadWindow is how many of the writer's next packages must be decoding or decoded before a
// bigFirst taker leaves install order, after its first choice. That first choice is the
// costliest package of the first burst, whatever its place: the biggest package is the
// longest single decode (libcrypto3: 4.6 MB, a third of the base world), and started
// later it was what the writer waited for last in most installs.
const aheadWindow = 4

func newJobQueue() *jobQueue {
	q := &jobQueue{}
	q.cond = sync.NewCond(&q.mu)
	return q
}

func (q *jobQueue) push(j job) {
	q.mu.Lock()
	q.pending = append(q.pending, j)
	q.mu.Unlock()
	q.cond.Signal()
}

// settle ends the first burst (see take).
func (q *jobQueue) settle() {
	q.mu.Lock()
	q.settled = true
	q.mu.Unlock()
	q.cond.Broadcast()
}

func (q *jobQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cond.Broadcast()
}

// take returns the next job in install order, or with bigFirst the costliest one pending
// (the earliest among equals); false once the queue is closed and empty. A bigFirst taker's
// first call waits for the first burst to settle, so that it chooses among all it admitted.
// Every admitted job is eventually taken, and in-order takers always get the one the writer
// needs next, so admitting in order under the budget cannot deadlock.
func (q *jobQueue) take(bigFirst bool) (job, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	first := bigFirst && !q.bigTaken
	for len(q.pending) == 0 || (first && !q.settled && !q.closed) {
		if q.closed && len(q.pending) == 0 {
			return job{}, false
		}
		q.cond.Wait()
	}
	if first {
		q.bigTaken = true
	}
	k := 0
	if bigFirst && (first || int64(q.pending[0].i) >= q.need.Load()+aheadWindow) {
		for i, j := range q.pending {
			if j.cost > q.pending[k].cost {
				k = i
			}
		}
	}
	j := q.pending[k]
	q.pending = append(q.pending[:k], q.pending[k+1:]...)
	return j, true
}

// decodeAll starts the parallel decoders and returns one channel per change (nil for changes
// that need no package file).
func (in *installer) decodeAll(ctx context.Context, changes []solver.Change, st *stager) ([]chan decoded, *budget, *jobQueue) {
	limit := in.opts.MemoryBudget
	if limit <= 0 {
		limit = DefaultMemoryBudget
	}
	workers := in.opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	bud := newBudget(limit)
	pool := newRegion(int(limit + limit/4))
	chans := make([]chan decoded, len(changes))
	q := newJobQueue()
	for i, c := range changes {
		if c.New != nil && c.New.InstalledSize > 0 {
			chans[i] = make(chan decoded, 1)
		}
	}
	go func() {
		defer q.close()
		defer q.settle()
		for i, c := range changes {
			if chans[i] == nil {
				continue
			}
			// What a decoded package holds until written: its inflated data segment, about its
			// installed size. (Compressed files go through one reused buffer per worker.) Capped
			// so one huge package can still go alone.
			cost := min(max(c.New.InstalledSize, 1), limit)
			if !bud.tryAcquire(cost) {
				q.settle() // the rest is admitted as the writer frees budget
				if !bud.acquire(ctx, cost) {
					chans[i] <- decoded{err: ctx.Err()}
					continue
				}
			}
			q.push(job{i, cost})
		}
	}()
	for w := 0; w < workers; w++ {
		// With several workers, one takes the biggest package admitted so far instead of the
		// next in order: a big package (libcrypto3: 4.5 MB, the longest single decode) then
		// starts at once instead of when the workers reach it, and is ready when the writer
		// is; the others keep feeding the writer in order.
		bigFirst := workers > 1 && w == 0
		go func() {
			var raw []byte // per worker, reused: compressed files are read whole
			for {
				j, ok := q.take(bigFirst)
				if !ok {
					return
				}
				if err := ctx.Err(); err != nil {
					chans[j.i] <- decoded{err: err, cost: j.cost}
					continue
				}
				var d decoded
				d, raw = in.decodeOne(changes[j.i].New, j.cost, pool, raw)
				if st != nil && d.err == nil {
					var staged int64
					if d.staged, staged = st.stage(d.p, d.arena, in.yieldToScripts); d.staged != nil {
						// Its contents are in the root's file system now, not in memory:
						// later packages may be decoded in their place.
						d.arena = nil
						freed := min(staged, d.cost)
						d.cost -= freed
						bud.release(freed)
					}
				}
				chans[j.i] <- d
				// Let the writer (woken by the send, queued behind this goroutine) run now:
				// with as many workers as CPUs it would otherwise wait for a preemption,
				// up to 10 ms, while the package it needs sits decoded.
				runtime.Gosched()
			}
		}()
	}
	return chans, bud, q
}

func (in *installer) decodeOne(p *pkg.Package, cost int64, pool *region, raw []byte) (decoded, []byte) {
	name := p.Name + "-" + p.Version
	file := in.pkgFile(p)
	if file == "" {
		return decoded{err: fmt.Errorf("%s: not in any repository", name), cost: cost}, raw
	}
	id, err := identity(p.Checksum)
	if err != nil {
		return decoded{err: fmt.Errorf("%s: index checksum: %w", name, err), cost: cost}, raw
	}
	pf, raw, err := openPackageFile(file, raw)
	if err != nil {
		return decoded{err: fmt.Errorf("%s: package file: %w", name, err), cost: cost}, raw
	}
	defer pf.close()
	a := &arena{mem: pool}
	var dp *pkgstream.Package
	err = catchFault(func() (err error) {
		dp, err = pkgstream.DecodeWith(name, pf.data, id, pkgstream.Options{Alloc: a, Yield: in.yieldToScripts})
		return err
	})
	if errors.Is(err, errFileChanged) {
		err = fmt.Errorf("%s: %w", name, err)
	}
	if err != nil {
		a.release()
		return decoded{err: fmt.Errorf("%w (file %s)", err, file), cost: cost}, raw
	}
	if dp.Info.Name != p.Name || dp.Info.Version != p.Version {
		a.release()
		return decoded{err: fmt.Errorf("%s: file %s contains %s-%s", name, file, dp.Info.Name, dp.Info.Version), cost: cost}, raw
	}
	return decoded{p: dp, cost: cost, arena: a}, raw
}

func identity(c string) ([]byte, error) {
	return db.ParseQ1(c)
}
