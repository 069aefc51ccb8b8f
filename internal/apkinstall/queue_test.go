package apkinstall

import "testing"

func TestJobQueueTake(t *testing.T) {
	tests := []struct {
		name  string
		costs []int64
		takes []bool // bigFirst per take
		want  []int  // job index taken
	}{
		{"in order", []int64{5, 9, 1}, []bool{false, false, false}, []int{0, 1, 2}},
		{"biggest first", []int64{5, 9, 1}, []bool{true, true, true}, []int{1, 0, 2}},
		{"equal costs: earliest", []int64{3, 7, 7}, []bool{true, true}, []int{1, 2}},
		{"mixed", []int64{2, 8, 4, 6}, []bool{true, false, true, false}, []int{1, 0, 3, 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := newJobQueue()
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
