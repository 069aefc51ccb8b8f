package apkinstall

import (
	"testing"
	"time"
)

func TestJobQueueTake(t *testing.T) {
	tests := []struct {
		name  string
		costs []int64
		need  int64  // the change the writer waits for
		takes []bool // bigFirst per take
		want  []int  // job index taken
	}{
		{"in order", []int64{5, 9, 1}, 0, []bool{false, false, false}, []int{0, 1, 2}},
		// The writer is past the window: bigFirst takers go for the costliest.
		{"biggest first", []int64{5, 9, 1}, -aheadWindow, []bool{true, true, true}, []int{1, 0, 2}},
		{"equal costs: earliest", []int64{3, 7, 7}, -aheadWindow, []bool{true, true}, []int{1, 2}},
		{"mixed", []int64{2, 8, 4, 6}, -aheadWindow, []bool{true, false, true, false}, []int{1, 0, 3, 2}},
		// The writer waits for job 0: a bigFirst taker's first choice is the costliest of the
		// first burst; after it, bigFirst takers feed the writer in order until its next
		// aheadWindow jobs are taken, then take the costliest again.
		{"writer first", []int64{1, 1, 1, 1, 1, 9, 3}, 0, []bool{true, true, true, true, true, true}, []int{5, 0, 1, 2, 3, 6}},
		{"first choice only once", []int64{1, 1, 1, 1, 1, 9, 3}, 0, []bool{false, true, true, true, true}, []int{0, 5, 1, 2, 3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := newJobQueue()
			q.need.Store(tc.need)
			for i, c := range tc.costs {
				q.push(job{i, c})
			}
			q.close()
			for k, big := range tc.takes {
				j, ok := q.take(big)
				if !ok || j.i != tc.want[k] {
					t.Fatalf("take #%d (bigFirst %v) = job %d, %v; want job %d, true", k, big, j.i, ok, tc.want[k])
				}
			}
			for range len(tc.costs) - len(tc.takes) {
				q.take(false)
			}
			if j, ok := q.take(true); ok {
				t.Errorf("take on a closed, empty queue = job %d, true; want false", j.i)
			}
		})
	}
}

// A bigFirst taker's first choice waits for the dispatcher's first burst to settle: it must
// not take a small early package because the big one was not admitted yet.
func TestJobQueueFirstChoiceWaitsForBurst(t *testing.T) {
	q := newJobQueue()
	q.push(job{0, 1})
	got := make(chan job, 1)
	go func() {
		j, _ := q.take(true)
		got <- j
	}()
	select {
	case j := <-got:
		t.Fatalf("take(bigFirst) = job %d before the burst settled; want it to wait", j.i)
	case <-time.After(20 * time.Millisecond):
	}
	q.push(job{1, 9})
	q.settle()
	if j := <-got; j.i != 1 {
		t.Errorf("take(bigFirst) after the burst = job %d, want 1 (the costliest)", j.i)
	}
	if j, ok := q.take(false); !ok || j.i != 0 {
		t.Errorf("take() = job %d, %v; want job 0, true", j.i, ok)
	}
}
