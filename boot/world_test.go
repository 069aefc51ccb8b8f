package boot

import (
	"fmt"
	"os"
	"path/filepath"
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
	var lowered, restored int
	low := func() func() { lowered++; return func() { restored++ } }

	var p fsPreload
	p.lower(low)
	p.raise()
	p.raise() // idempotent
	if lowered != 1 || restored != 1 {
		t.Errorf("lower then raise: lowered %d, restored %d; want 1, 1", lowered, restored)
	}

	// A mount before the preload got going: the preload must not lower itself afterwards,
	// or it would run starved while the mount waits for it.
	lowered, restored = 0, 0
	var q fsPreload
	q.raise()
	q.lower(low)
	if lowered != 0 || restored != 0 {
		t.Errorf("raise then lower: lowered %d, restored %d; want 0, 0", lowered, restored)
	}

	var r fsPreload
	r.lower(nil) // no LowPriority (tests): nothing to do
	r.raise()
}
