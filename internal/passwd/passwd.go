// Package passwd reads name → id maps from /etc/passwd and /etc/group text, the way apk and
// busybox tar resolve owners by name against the target root's files at extraction time.
package passwd

import (
	"bufio"
	"io"
	"strconv"
	"strings"
)

// ParseIDs maps each name in passwd- or group-format text (name:x:id:...) to its id. The first
// entry for a name wins, as with getpwnam; malformed lines are skipped.
func ParseIDs(r io.Reader) map[string]int {
	ids := map[string]int{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		fs := strings.SplitN(sc.Text(), ":", 4)
		if len(fs) < 3 || fs[0] == "" {
			continue
		}
		if id, err := strconv.Atoi(fs[2]); err == nil {
			if _, dup := ids[fs[0]]; !dup {
				ids[fs[0]] = id
			}
		}
	}
	return ids
}
