package boot

import (
	"bytes"
	"strconv"
	"time"
)

// clockMark is written to the kernel log (debug level) when /dev/kmsg is attached; its
// timestamp and the kernel's "Run /init as init process" line bound the start-up that the
// plan's own clock cannot see: exec, the Go runtime and the wiring before the first phase.
const clockMark = "ramboot: clock mark"

// startupMS returns the milliseconds from the kernel's exec of /init to the plan's start, from a
// kernel log (klogctl READ_ALL: "<6>[    2.176261] Run /init as init process" lines) in which
// clockMark was logged markAt into the plan. ok is false when the log lacks either line or
// their timestamps (printk.time off, ring buffer wrapped).
func startupMS(klog []byte, markAt time.Duration) (ms float64, ok bool) {
	var run, mark float64
	var haveRun, haveMark bool
	for len(klog) > 0 && !haveMark {
		line := klog
		if i := bytes.IndexByte(klog, '\n'); i >= 0 {
			line, klog = klog[:i], klog[i+1:]
		} else {
			klog = nil
		}
		ts, msg, good := klogLine(line)
		if !good {
			continue
		}
		switch {
		case !haveRun && bytes.HasPrefix(msg, []byte("Run ")) && bytes.HasSuffix(msg, []byte(" as init process")):
			run, haveRun = ts, true
		case haveRun && bytes.Equal(msg, []byte(clockMark)):
			mark, haveMark = ts, true
		}
	}
	if !haveRun || !haveMark {
		return 0, false
	}
	d := (mark-run)*1000 - float64(markAt.Microseconds())/1000
	if d < 0 {
		return 0, false
	}
	return d, true
}

// klogLine splits "<P>[ SSSS.UUUUUU] message" into seconds and message.
func klogLine(line []byte) (ts float64, msg []byte, ok bool) {
	if i := bytes.IndexByte(line, '>'); len(line) > 0 && line[0] == '<' && i > 0 {
		line = line[i+1:]
	}
	if len(line) == 0 || line[0] != '[' {
		return 0, nil, false
	}
	end := bytes.IndexByte(line, ']')
	if end < 0 {
		return 0, nil, false
	}
	ts, err := strconv.ParseFloat(string(bytes.TrimSpace(line[1:end])), 64)
	if err != nil {
		return 0, nil, false
	}
	return ts, bytes.TrimPrefix(line[end+1:], []byte(" ")), true
}
