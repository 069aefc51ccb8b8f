package apkinstall_test

import (
	"bytes"
	"context"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ramboot/ramboot/internal/apkinstall"
)

// TestProgressBar installs a real world with --progress and checks apk's bar protocol: drawn
// (ESC7, "%3d%% ", the bar padded to width-6 cells) under each "(i/n) Installing" line, cleared
// (ESC8 ESC[0K) before the next output, percentages never going back, 100% at the end, and
// plain output, byte for byte, once the bar is taken out.
func TestProgressBar(t *testing.T) {
	world := []string{"alpine-base"}
	var plain, withBar bytes.Buffer
	if _, err := apkinstall.Add(context.Background(), realOpts(t, filepath.Join(t.TempDir(), "r"), &plain), world); err != nil {
		t.Fatal(err)
	}
	o := realOpts(t, filepath.Join(t.TempDir(), "r"), &withBar)
	o.Progress, o.ProgressWidth, o.ProgressChar = true, 60, "#"
	if _, err := apkinstall.Add(context.Background(), o, world); err != nil {
		t.Fatal(err)
	}
	out := withBar.String()
	bar := regexp.MustCompile("\x1b7([ 0-9]{3})% (#*)( *)")
	draws := bar.FindAllStringSubmatch(out, -1)
	lines := strings.Count(plain.String(), ") Installing ")
	if len(draws) < lines {
		t.Fatalf("progress: %d bars drawn for %d packages, want one under each:\n%q", len(draws), lines, out)
	}
	last := -1
	for _, d := range draws {
		pct, _ := strconv.Atoi(strings.TrimSpace(d[1]))
		if pct < last {
			t.Errorf("progress went back from %d%% to %d%%", last, pct)
		}
		last = pct
		if n := len(d[2]) + len(d[3]); n != 60-6 {
			t.Errorf("bar %q is %d cells, want %d (width 60 - 6)", d[0], n, 54)
		}
		if want := 54 * pct / 100; len(d[2]) < want-1 || len(d[2]) > want+1 {
			t.Errorf("bar at %d%% has %d cells filled, want about %d", pct, len(d[2]), want)
		}
	}
	if last != 100 {
		t.Errorf("last bar at %d%%, want 100%%", last)
	}
	// Every drawn bar is cleared before the next output (the OK line ends it).
	if c, d := strings.Count(out, "\x1b8\x1b[0K"), len(draws); c != d {
		t.Errorf("%d bars drawn but %d cleared", d, c)
	}
	stripped := bar.ReplaceAllString(out, "")
	stripped = strings.ReplaceAll(stripped, "\x1b8\x1b[0K", "")
	if stripped != plain.String() {
		t.Errorf("output without the bar differs from plain output:\n got %q\nwant %q", stripped, plain.String())
	}
	if !strings.HasSuffix(out, plain.String()[strings.LastIndex(plain.String(), "OK: "):]) {
		t.Errorf("output does not end with the OK line: %q", out[max(0, len(out)-200):])
	}
}
