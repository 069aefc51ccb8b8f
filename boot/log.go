package boot

import (
	"fmt"
	"io"
	"strings"
	"sync"
)

// Logger writes "ramboot: PHASE: message" lines to the console and to /dev/kmsg. Errors always
// reach both; progress lines are kept off the console under quiet.
type Logger struct {
	mu      sync.Mutex
	console io.Writer
	kmsg    io.Writer
	quiet   bool
	debug   bool
	// echo is the kernel's console_loglevel: kmsg records below it are printed on the console
	// by the kernel itself, so writing them to the console too would show every line twice.
	echo int
	// reopen gives a fresh /dev/kmsg handle for each warning and error: the kernel rate-limits
	// writes per open file (10 records per 5 s), and a chatty boot (debug_init, phase lines)
	// would otherwise have its errors dropped from the log and, under quiet, the console.
	reopen func() (io.WriteCloser, error)
}

// ReopenKmsg makes warnings and errors go to /dev/kmsg through a fresh handle each (open
// returns one), so the kernel's per-file rate limit never drops them.
func (l *Logger) ReopenKmsg(open func() (io.WriteCloser, error)) {
	l.mu.Lock()
	l.reopen = open
	l.mu.Unlock()
}

// NewLogger returns a logger writing to console (may be nil); kmsg is attached later, once /dev
// exists (AttachKmsg).
func NewLogger(console io.Writer) *Logger {
	if console == nil {
		console = io.Discard
	}
	return &Logger{console: console}
}

// AttachKmsg adds the kernel log as a second destination; consoleLevel is the kernel's
// console_loglevel (first field of /proc/sys/kernel/printk), 0 if unknown.
func (l *Logger) AttachKmsg(w io.Writer, consoleLevel int) {
	l.mu.Lock()
	l.kmsg, l.echo = w, consoleLevel
	l.mu.Unlock()
}

// SetQuiet and SetDebug apply the quiet and debug_init parameters.
func (l *Logger) SetQuiet(q bool) { l.mu.Lock(); l.quiet = q; l.mu.Unlock() }

// SetDebug enables debug lines.
func (l *Logger) SetDebug(d bool) { l.mu.Lock(); l.debug = d; l.mu.Unlock() }

// Console returns the writer for long output (apk progress): the console unless quiet.
func (l *Logger) Console() io.Writer {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.quiet {
		return io.Discard
	}
	return l.console
}

// kmsg levels (syslog priorities).
const (
	levelErr    = 3
	levelWarn   = 4
	levelInfo   = 6
	levelDebug  = 7
	kmsgMaxLine = 900 // the kernel truncates longer records; keep the prefix intact
)

func (l *Logger) write(level int, toConsole bool, phase, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	line := "ramboot: " + msg
	if phase != "" {
		line = "ramboot: " + phase + ": " + msg
	}
	line = strings.TrimRight(line, "\n")
	l.mu.Lock()
	defer l.mu.Unlock()
	if toConsole && !(l.kmsg != nil && level < l.echo) {
		fmt.Fprintln(l.console, line)
	}
	if l.kmsg != nil {
		w := l.kmsg
		if level <= levelWarn && l.reopen != nil {
			if f, err := l.reopen(); err == nil {
				defer f.Close()
				w = f
			}
		}
		for _, part := range strings.Split(line, "\n") {
			if len(part) > kmsgMaxLine {
				part = part[:kmsgMaxLine]
			}
			// One write per record: /dev/kmsg turns each write into one log line.
			fmt.Fprintf(w, "<%d>%s\n", level, part)
		}
	}
}

// Infof logs progress: console unless quiet, kmsg always.
func (l *Logger) Infof(phase, format string, args ...any) {
	l.write(levelInfo, !l.isQuiet(), phase, format, args...)
}

// Warnf logs a non-fatal problem on the console (even under quiet) and kmsg.
func (l *Logger) Warnf(phase, format string, args ...any) {
	l.write(levelWarn, true, phase, format, args...)
}

// Errorf logs a failure on the console and kmsg.
func (l *Logger) Errorf(phase, format string, args ...any) {
	l.write(levelErr, true, phase, format, args...)
}

// Debugf logs only with debug_init.
func (l *Logger) Debugf(phase, format string, args ...any) {
	l.mu.Lock()
	d := l.debug
	l.mu.Unlock()
	if d {
		l.write(levelDebug, true, phase, format, args...)
	}
}

func (l *Logger) isQuiet() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.quiet
}
