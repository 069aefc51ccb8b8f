package overlay

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseName(t *testing.T) {
	tests := []struct {
		name, host, cipher string
		ok                 bool
	}{
		{"host.apkovl.tar.gz", "host", "", true},
		{"host.apkovl.tar.gz.aes-256-cbc", "host", "aes-256-cbc", true},
		{"my.host.apkovl.tar.gz.aes256", "my.host", "aes256", true},
		{"host.apkovl.tar.gz.new", "", "", false}, // Alpine lbu's leftover
		{"host.apkovl.tar.gz.tmp", "", "", false}, // generic leftover
		{"host.apkovl.tar.gz~", "", "", false},    // editor backup
		{".host.apkovl.tar.gz", "", "", false},    // hidden (temporary) file
		{".lbu-host.tmp.123", "", "", false},      // ramboot lbu temporary: not even the pattern
		{"host.20240101000000.tar.gz", "", "", false},
		{"host.apkovl.tar.gz.AES", "", "", false},
		{".apkovl.tar.gz", "", "", false},
	}
	for _, tc := range tests {
		h, c, ok, why := ParseName(tc.name)
		if h != tc.host || c != tc.cipher || ok != tc.ok {
			t.Errorf("ParseName(%q) = %q, %q, %v (%s), want %q, %q, %v", tc.name, h, c, ok, why, tc.host, tc.cipher, tc.ok)
		}
	}
}

func touch(t *testing.T, dir, name string, mtime time.Time) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("x"), 0644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestScanIgnoresLeftovers(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	touch(t, dir, "b.apkovl.tar.gz", t0)
	touch(t, dir, "a.apkovl.tar.gz.aes-256-cbc", t0)
	touch(t, dir, "a.apkovl.tar.gz.new", t0)
	touch(t, dir, ".lbu-a.apkovl.tar.gz.tmp", t0)
	touch(t, dir, ".lbu-commit-123.tmp", t0) // internal/lbu's temporary name: no apkovl suffix
	touch(t, dir, ".lbu-other", t0)
	touch(t, dir, "a.20240101000000.tar.gz", t0)
	os.Mkdir(filepath.Join(dir, "d.apkovl.tar.gz"), 0755)
	cands, ignored, err := Scan(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range cands {
		got = append(got, filepath.Base(c.Path)+"|"+c.Name+"|"+c.Cipher)
	}
	want := []string{"a.apkovl.tar.gz.aes-256-cbc|a|aes-256-cbc", "b.apkovl.tar.gz|b|"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Scan candidates (-want +got):\n%s", d)
	}
	wantIgnored := []string{
		filepath.Join(dir, ".lbu-a.apkovl.tar.gz.tmp") + ": ignored: hidden file (temporary or metadata)",
		filepath.Join(dir, ".lbu-commit-123.tmp") + ": ignored: temporary file of an interrupted lbu commit",
		filepath.Join(dir, "a.apkovl.tar.gz.new") + `: ignored: leftover temporary file (suffix "new" is not a cipher)`,
		filepath.Join(dir, "d.apkovl.tar.gz") + ": ignored: not a regular file",
	}
	if d := cmp.Diff(wantIgnored, ignored); d != "" {
		t.Errorf("Scan ignored (-want +got):\n%s", d)
	}
	for _, i := range ignored {
		if !strings.Contains(i, "ignored:") {
			t.Errorf("ignored line %q does not say why", i)
		}
	}
}

func TestChoose(t *testing.T) {
	old := time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC)
	newer := old.Add(time.Hour)
	c := func(p, name string, m time.Time, cipher string) Candidate {
		return Candidate{Path: "/media/" + p, Media: "/media", Name: name, ModTime: m, Encrypted: cipher != "", Cipher: cipher}
	}
	tests := []struct {
		name     string
		cands    []Candidate
		hostname string
		want     string
	}{
		{"none", nil, "h", ""},
		{"only", []Candidate{c("sda/x.apkovl.tar.gz", "x", old, "")}, "", "/media/sda/x.apkovl.tar.gz"},
		{"hostname wins over newer", []Candidate{
			c("sda/other.apkovl.tar.gz", "other", newer, ""),
			c("sdb/h.apkovl.tar.gz", "h", old, ""),
		}, "h", "/media/sdb/h.apkovl.tar.gz"},
		{"newest without hostname", []Candidate{
			c("sda/a.apkovl.tar.gz", "a", old, ""),
			c("sdb/b.apkovl.tar.gz", "b", newer, ""),
		}, "", "/media/sdb/b.apkovl.tar.gz"},
		{"same age: path order", []Candidate{
			c("sdb/b.apkovl.tar.gz", "b", old, ""),
			c("sda/a.apkovl.tar.gz", "a", old, ""),
		}, "zzz", "/media/sda/a.apkovl.tar.gz"},
		{"unsupported cipher skipped", []Candidate{
			c("sda/h.apkovl.tar.gz.bf-cbc", "h", newer, "bf-cbc"),
			c("sda/g.apkovl.tar.gz", "g", old, ""),
		}, "h", "/media/sda/g.apkovl.tar.gz"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			best, log := Choose(tc.cands, tc.hostname)
			got := ""
			if best != nil {
				got = best.Path
			}
			if got != tc.want {
				t.Errorf("Choose() = %q, want %q; log:\n%s", got, tc.want, strings.Join(log, "\n"))
			}
			// Every candidate is explained, and the decision does not depend on input order.
			if len(tc.cands) > 0 && len(log) != len(tc.cands) {
				t.Errorf("Choose() log has %d lines, want %d: %q", len(log), len(tc.cands), log)
			}
			rev := append([]Candidate(nil), tc.cands...)
			for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
				rev[i], rev[j] = rev[j], rev[i]
			}
			best2, _ := Choose(rev, tc.hostname)
			if (best2 == nil) != (best == nil) || (best2 != nil && best2.Path != got) {
				t.Errorf("Choose(reversed) = %v, want %q", best2, got)
			}
		})
	}
}

func TestBackups(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	for _, n := range []string{
		"h.20240101000000.tar.gz", "h.20250101000000.tar.gz.aes-256-cbc", "h.20230101000000.tar.gz",
		"other.20260101000000.tar.gz", "h.apkovl.tar.gz", "h.2024.tar.gz", "h.20240101000000.tar.gz.new",
	} {
		touch(t, dir, n, now)
	}
	got, err := Backups(dir, "h")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		filepath.Join(dir, "h.20250101000000.tar.gz.aes-256-cbc"),
		filepath.Join(dir, "h.20240101000000.tar.gz"),
		filepath.Join(dir, "h.20230101000000.tar.gz"),
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Backups(h) (-want +got):\n%s", d)
	}
}
