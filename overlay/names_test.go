package overlay

import (
	"regexp"
	"strings"
	"testing"
)

// The name matchers replaced regexps (compiled at every PID 1 start); these tests hold them to
// the regexps' answers over generated names, including the near misses.

var (
	cipherRE = regexp.MustCompile(`^[a-z][a-z0-9]*(-[a-z0-9]+)*$`)
	backupRE = regexp.MustCompile(`^(.+)\.([0-9]{14})\.tar\.gz(\.[a-z0-9-]+)?$`)
)

// names builds every concatenation of up to depth pieces.
func names(pieces []string, depth int) []string {
	out := []string{""}
	last := []string{""}
	for d := 0; d < depth; d++ {
		var next []string
		for _, p := range last {
			for _, q := range pieces {
				next = append(next, p+q)
			}
		}
		out = append(out, next...)
		last = next
	}
	return out
}

func TestIsCipherNameMatchesRegexp(t *testing.T) {
	for _, c := range names([]string{"a", "z", "0", "9", "-", "A", ".", "_"}, 4) {
		if got, want := isCipherName(c), cipherRE.MatchString(c); got != want {
			t.Errorf("isCipherName(%q) = %v, want %v", c, got, want)
		}
	}
}

func TestParseBackupNameMatchesRegexp(t *testing.T) {
	stamp := "20261130024700"
	var all []string
	for _, host := range []string{"", "h", "my.host", ".h", "h-1"} {
		for _, mid := range []string{"." + stamp, "." + stamp[:13], "." + stamp + "0", stamp, ".2026113002470x"} {
			for _, tail := range names([]string{".tar", ".gz", ".aes-256-cbc", ".new", ".X", "."}, 3) {
				all = append(all, host+mid+tail)
			}
		}
	}
	all = append(all, "h."+stamp+".tar.gz."+stamp+".tar.gz", "h."+stamp+".tar.gz.tar.gz")
	matched := 0
	for _, n := range all {
		var wantHost, wantStamp string
		wantOK := false
		if m := backupRE.FindStringSubmatch(n); m != nil && !strings.HasPrefix(n, ".") && (m[3] == "" || !isTempSuffix(m[3][1:])) {
			wantHost, wantStamp, wantOK = m[1], m[2], true
			matched++
		}
		host, st, ok := ParseBackupName(n)
		if host != wantHost || st != wantStamp || ok != wantOK {
			t.Errorf("ParseBackupName(%q) = %q, %q, %v, want %q, %q, %v", n, host, st, ok, wantHost, wantStamp, wantOK)
		}
	}
	if matched < 10 {
		t.Fatalf("only %d of %d generated names are backups: the corpus tests nothing", matched, len(all))
	}
}
