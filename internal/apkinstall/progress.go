package apkinstall

import (
	"fmt"
	"io"
	"strings"
	"sync"
)

// progressBar draws apk's --progress bar: "ESC7" + "%3d%% " + a bar of width cells + "ESC8 ESC[0K".
// Like apk it is drawn under the last output line and cleared by the next output (the clear is
// held back until then, so the bar stays visible while a package installs), and it is redrawn
// after every line. Outputs to the same terminal go through its writers so the clear precedes
// them.
type progressBar struct {
	mu      sync.Mutex
	w       io.Writer // the terminal (stdout)
	width   int       // bar cells: apk's screen width - 6
	char    string
	total   int64
	done    int64
	lastBar int
	lastPct int
	force   bool // a line was written since the last draw
	pending bool // a drawn bar awaits its clear
}

// newProgressBar draws on w; the commit sets total once the transaction is known.
func newProgressBar(w io.Writer, screenWidth int, char string) *progressBar {
	if screenWidth <= 50 {
		screenWidth = 50 // apk's minimum (and its default when the width is unknown)
	}
	if char == "" {
		char = "#"
	}
	return &progressBar{w: w, width: screenWidth - 6, char: char, force: true}
}

// writer returns w with the pending clear written to the terminal before anything w gets.
func (p *progressBar) writer(w io.Writer) io.Writer { return progressWriter{p, w} }

type progressWriter struct {
	p *progressBar
	w io.Writer
}

func (pw progressWriter) Write(b []byte) (int, error) {
	pw.p.mu.Lock()
	defer pw.p.mu.Unlock()
	pw.p.clearLocked()
	pw.p.force = true
	return pw.w.Write(b)
}

func (p *progressBar) clearLocked() {
	if p.pending {
		p.pending = false
		io.WriteString(p.w, "\x1b8\x1b[0K")
	}
}

// add advances the bar by n bytes of the transaction and redraws it when it changed.
func (p *progressBar) add(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done = min(p.done+n, p.total)
	bar, pct := 0, 0
	if p.total > 0 {
		bar = int(int64(p.width) * p.done / p.total)
		pct = int(100 * p.done / p.total)
	}
	if bar == p.lastBar && pct == p.lastPct && !p.force {
		return
	}
	p.lastBar, p.lastPct, p.force = bar, pct, false
	p.clearLocked()
	var b strings.Builder
	b.WriteString("\x1b7")
	fmt.Fprintf(&b, "%3d%% ", pct)
	b.WriteString(strings.Repeat(p.char, bar))
	b.WriteString(strings.Repeat(" ", p.width-bar))
	io.WriteString(p.w, b.String())
	p.pending = true
}
