package passwd

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseIDs(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     map[string]int
	}{
		{"passwd", "root:x:0:0:root:/root:/bin/ash\nsshd:x:22:22:sshd:/dev/null:/sbin/nologin\n", map[string]int{"root": 0, "sshd": 22}},
		{"group", "root:x:0:root\nwheel:x:10:root\n", map[string]int{"root": 0, "wheel": 10}},
		{"first wins", "a:x:1:\na:x:2:\n", map[string]int{"a": 1}},
		{"malformed skipped", "nocolons\n:x:5:\nb:x:notanumber:\nc:x\nd:x:7\n", map[string]int{"d": 7}},
		{"empty", "", map[string]int{}},
	} {
		if diff := cmp.Diff(tc.want, ParseIDs(strings.NewReader(tc.in))); diff != "" {
			t.Errorf("%s: ParseIDs() mismatch (-want +got):\n%s", tc.name, diff)
		}
	}
}
