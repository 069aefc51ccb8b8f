package vm

import (
	"bytes"
	"fmt"
	"strings"
	"time"
)

// Line is one console line with the time it was completed, relative to the VM start.
type Line struct {
	At   time.Duration
	Text string
}

func (l Line) String() string { return fmt.Sprintf("[%7.2fs] %s", l.At.Seconds(), l.Text) }

// console turns the raw serial byte stream into text: it drops carriage returns and ANSI escape
// sequences (OpenRC colours its "[ ok ]" markers) so that tests can match plain strings. The state
// survives chunk boundaries because the serial pipe splits output arbitrarily.
type console struct {
	text    bytes.Buffer // everything, cleaned
	partial bytes.Buffer // the current, not yet terminated line
	lines   []Line
	esc     int // 0 = normal, 1 = after ESC, 2 = inside a CSI sequence
}

// write appends a chunk and returns the lines it completed.
func (c *console) write(p []byte, at time.Duration) []Line {
	var done []Line
	for _, b := range p {
		switch c.esc {
		case 1:
			if b == '[' {
				c.esc = 2
			} else {
				c.esc = 0 // a two-byte escape such as ESC c or ESC 7
			}
			continue
		case 2:
			if b >= 0x40 && b <= 0x7e {
				c.esc = 0
			}
			continue
		}
		switch b {
		case 0x1b:
			c.esc = 1
		case '\r', 0:
		case '\n':
			c.text.WriteByte('\n')
			l := Line{At: at, Text: c.partial.String()}
			c.lines = append(c.lines, l)
			done = append(done, l)
			c.partial.Reset()
		default:
			c.text.WriteByte(b)
			c.partial.WriteByte(b)
		}
	}
	return done
}

// tail returns the last n lines, plus the unterminated line (a login prompt has no newline).
func (c *console) tail(n int) []string {
	start := max(len(c.lines)-n, 0)
	var out []string
	for _, l := range c.lines[start:] {
		out = append(out, l.String())
	}
	if c.partial.Len() > 0 {
		out = append(out, "[   ...  ] "+c.partial.String())
	}
	return out
}

// findPanic returns the first console line after which the guest cannot recover; seeing one ends
// any wait instead of letting it run into the timeout.
func findPanic(s string) string {
	for _, m := range []string{"Kernel panic - not syncing", "KVM internal error"} {
		if i := strings.Index(s, m); i >= 0 {
			end := strings.IndexByte(s[i:], '\n')
			if end < 0 {
				return s[i:]
			}
			return s[i : i+end]
		}
	}
	return ""
}
