package lbu

import (
	"regexp"
	"testing"
)

// runPartsName replaced a regexp (compiled at every start of the agent, which is also PID 1).
func TestRunPartsNameMatchesRegexp(t *testing.T) {
	re := regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	pieces := []string{"a", "Z", "0", "_", "-", ".", "~", " ", "é"}
	all := []string{""}
	last := []string{""}
	for d := 0; d < 3; d++ {
		var next []string
		for _, p := range last {
			for _, q := range pieces {
				next = append(next, p+q)
			}
		}
		all, last = append(all, next...), next
	}
	for _, n := range all {
		if got, want := runPartsName(n), re.MatchString(n); got != want {
			t.Errorf("runPartsName(%q) = %v, want %v", n, got, want)
		}
	}
}
