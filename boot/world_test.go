package boot

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func TestInstallBudget(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		meminfo string
		want    int64
	}{
		{"MemTotal:         504512 kB\nMemFree:          450000 kB\nMemAvailable:     400000 kB\n", 400000 * 1024 / 8},
		{"MemAvailable:   8000000 kB\n", 64 << 20}, // capped
		{"MemAvailable:     40000 kB\n", 10 << 20}, // floor: the installer's default
		{"MemTotal:        1004512 kB\n", 0},       // old kernel without MemAvailable
		{"MemAvailable:   lots kB\n", 0},
	}
	for i, tt := range tests {
		p := filepath.Join(dir, fmt.Sprintf("meminfo%d", i))
		if err := os.WriteFile(p, []byte(tt.meminfo), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := installBudget(p); got != tt.want {
			t.Errorf("installBudget(%q) = %d, want %d", tt.meminfo, got, tt.want)
		}
	}
	if got := installBudget(filepath.Join(dir, "missing")); got != 0 {
		t.Errorf("installBudget(missing file) = %d, want 0", got)
	}
}

func TestFSPreloadPriority(t *testing.T) {
	var mu sync.Mutex
	var calls []int // nice values set, in order
	setNice := func(tid, n int) { mu.Lock(); calls = append(calls, n); mu.Unlock() }
	inGoroutine := func(f func()) { // lower locks its goroutine's thread: keep that off the test's
		done := make(chan struct{})
		go func() { defer close(done); f() }()
		<-done
	}

	var p fsPreload
	inGoroutine(func() { p.lower(setNice) })
	p.raise()
	p.raise() // idempotent
	if fmt.Sprint(calls) != "[19 0]" {
		t.Errorf("lower then raise: nice set to %v, want [19 0]", calls)
	}

	// A mount before the preload got going: the preload must not lower itself afterwards,
	// or it would run starved while the mount waits for it.
	calls = nil
	var q fsPreload
	q.raise()
	inGoroutine(func() { q.lower(setNice) })
	if len(calls) != 0 {
		t.Errorf("raise then lower: nice set to %v, want nothing", calls)
	}

	var r fsPreload
	r.lower(nil) // no SetNice (tests): nothing to do
	r.raise()
}

// blockingLoads is a Recorder whose LoadModule waits until released.
type blockingLoads struct {
	*Recorder
	started chan struct{}
	release chan struct{}
}

func (b blockingLoads) LoadModule(path, params string) error {
	b.started <- struct{}{}
	<-b.release
	return nil
}

// TestModuleLoadsBehind: once the boot moves module loading behind the install, the threads of
// loads in flight and of loads started later run at nice 19, and are back at 0 as soon as
// something waits for them (or when their load ends: the thread returns to the Go scheduler).
func TestModuleLoadsBehind(t *testing.T) {
	var mu sync.Mutex
	nice := map[int]int{}
	b := blockingLoads{NewRecorder(), make(chan struct{}), make(chan struct{})}
	m := &moduleLog{actions: b, setNice: func(tid, n int) { mu.Lock(); nice[tid] = n; mu.Unlock() }}
	get := func() map[int]int {
		mu.Lock()
		defer mu.Unlock()
		c := map[int]int{}
		for k, v := range nice {
			c[k] = v
		}
		return c
	}

	done := make(chan error)
	go func() { done <- m.LoadModule("/lib/modules/x/a.ko", "") }()
	<-b.started
	if n := get(); len(n) != 0 {
		t.Fatalf("a load before the media are found was re-prioritised: %v", n)
	}
	m.background(true)
	n := get()
	if len(n) != 1 {
		t.Fatalf("background(true) with one load in flight: nice = %v, want that thread at 19", n)
	}
	var first int
	for tid, v := range n {
		first = tid
		if v != 19 {
			t.Errorf("in-flight load's thread nice = %d, want 19", v)
		}
	}
	go func() { done <- m.LoadModule("/lib/modules/x/b.ko", "") }()
	<-b.started
	if n := get(); len(n) != 2 {
		t.Errorf("a load started behind the install: nice = %v, want its thread at 19 too", n)
	}
	m.background(false)
	for tid, v := range get() {
		if v != 0 {
			t.Errorf("after background(false) thread %d nice = %d, want 0", tid, v)
		}
	}
	b.release <- struct{}{}
	b.release <- struct{}{}
	<-done
	<-done
	if got := get()[first]; got != 0 {
		t.Errorf("thread nice after the load = %d, want 0", got)
	}
	if len(m.inFlight) != 0 {
		t.Errorf("inFlight after both loads = %v, want empty", m.inFlight)
	}
}
