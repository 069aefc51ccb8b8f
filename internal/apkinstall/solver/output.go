package solver

import (
	"fmt"
	"io"
	"strconv"

	"github.com/ramboot/ramboot/internal/apkinstall/version"
)

// Style selects which apk's output format to reproduce.
type Style int

const (
	// StyleAPK2 is apk-tools 2.x (Alpine <= 3.22): "(1/25) Installing musl (1.2.4-r2)" and
	// "OK: 8 MiB in 25 packages".
	StyleAPK2 Style = iota
	// StyleAPK3 is apk-tools 3.x (and upstream's test vectors): the counter is padded to the
	// width of the total ("( 1/25)") and sizes are humanized ("OK: 2 B in 2 packages").
	StyleAPK3
)

// Verb is the apk word for a change: Installing, Purging, Upgrading, Downgrading, Replacing,
// Reinstalling or Updating pinning.
func (c Change) Verb() string {
	switch {
	case c.Old == nil:
		return "Installing"
	case c.New == nil:
		return "Purging"
	case c.Old == c.New:
		if c.Reinstall {
			return "Reinstalling"
		}
		return "Updating pinning"
	}
	switch version.CompareMask(c.New.Version, c.Old.Version, false) {
	case version.Less:
		return "Downgrading"
	case version.Greater:
		return "Upgrading"
	}
	return "Replacing"
}

// Line renders change i of n as apk prints it, e.g. "(1/2) Installing b@testing (3)".
func (c Change) Line(i, n int, style Style) string {
	status := fmt.Sprintf("(%d/%d)", i, n)
	if style == StyleAPK3 {
		status = fmt.Sprintf("(%*d/%d)", len(strconv.Itoa(n)), i, n)
	}
	name, tag := "", ""
	if c.New != nil {
		name = c.New.Name
	} else {
		name = c.Old.Name
	}
	if c.NewTag != "" {
		tag = "@" + c.NewTag
	}
	if c.Old == nil || c.New == nil || c.Old == c.New {
		v := ""
		if c.New != nil {
			v = c.New.Version
		} else {
			v = c.Old.Version
		}
		return fmt.Sprintf("%s %s %s%s (%s)", status, c.Verb(), name, tag, v)
	}
	return fmt.Sprintf("%s %s %s%s (%s -> %s)", status, c.Verb(), name, tag, c.Old.Version, c.New.Version)
}

// HumanSize is apk 3's apk_fmt_human_size: divide by 1024 while >= 10000; B and KiB as integers,
// larger units with one decimal.
func HumanSize(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	f := float32(n) // apk computes in C float
	v := n
	i := 0
	for ; i < len(units)-1 && f >= 10000; i++ {
		f /= 1024
		v /= 1024
	}
	if i < 2 {
		return fmt.Sprintf("%d %s", v, units[i])
	}
	return fmt.Sprintf("%.1f %s", f, units[i])
}

// OKLine is apk's final summary line for a successful commit with the given error count
// ("OK: ..." or "N errors; ...").
func (s *Solution) OKLine(style Style, errors int) string {
	prefix := "OK:"
	if errors == 1 {
		prefix = "1 error;"
	} else if errors > 1 {
		prefix = fmt.Sprintf("%d errors;", errors)
	}
	if style == StyleAPK2 {
		return fmt.Sprintf("%s %d MiB in %d packages", prefix, s.InstalledBytes/(1024*1024), s.InstalledPackages)
	}
	return fmt.Sprintf("%s %s in %d packages", prefix, HumanSize(s.InstalledBytes), s.InstalledPackages)
}

// WriteSimulation writes what `apk add --simulate` prints: every change line, then the OK line.
func (s *Solution) WriteSimulation(w io.Writer, style Style) error {
	for i, c := range s.Changes {
		if _, err := fmt.Fprintln(w, c.Line(i+1, len(s.Changes), style)); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintln(w, s.OKLine(style, 0))
	return err
}
