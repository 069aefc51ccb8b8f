package boot

import (
	"math"
	"testing"
	"time"
)

func TestStartupMS(t *testing.T) {
	const klog = "<6>[    0.000000] Linux version 6.1.0-57-cloud-amd64\n" +
		"<6>[    2.176261] Run /init as init process\n" +
		"<6>[    2.176455]   with arguments:\n" +
		"<7>[    2.360261] " + clockMark + "\n" +
		"<6>[    2.369023] ramboot: early-mounts: ok in 0.031s\n"
	tests := []struct {
		name   string
		klog   string
		markAt time.Duration
		want   float64
		ok     bool
	}{
		{"mark 20ms into the plan", klog, 20 * time.Millisecond, 164, true},
		{"mark at plan start", klog, 0, 184, true},
		{"no run line (ring buffer wrapped)", "<7>[    2.360261] " + clockMark + "\n", 0, 0, false},
		{"no mark", "<6>[    2.176261] Run /init as init process\n", 0, 0, false},
		{"no timestamps (printk.time=0)", "<6>Run /init as init process\n<7>" + clockMark + "\n", 0, 0, false},
		{"mark before run is ignored", "<7>[    1.000000] " + clockMark + "\n<6>[    2.000000] Run /init as init process\n", 0, 0, false},
		{"rdinit name", "<6>[    1.5] Run /sbin/init as init process\n<7>[    1.75] " + clockMark + "\n", 0, 250, true},
		{"mark later than the log allows", klog, time.Second, 0, false},
	}
	for _, tt := range tests {
		got, ok := startupMS([]byte(tt.klog), tt.markAt)
		if ok != tt.ok || math.Abs(got-tt.want) > 0.01 {
			t.Errorf("%s: startupMS = %.3f, %v, want %.3f, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}
