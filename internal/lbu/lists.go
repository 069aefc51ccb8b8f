package lbu

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ListFile is lbu's include/exclude list, one of apk's protected_paths.d files.
const ListFile = "etc/apk/protected_paths.d/lbu.list"

// normalize strips leading "/" like lbu (relative arguments are relative to "/", not the cwd;
// globs are kept verbatim).
func normalize(p string) string { return strings.TrimLeft(p, "/") }

func readList(root string) ([]string, error) {
	data, err := os.ReadFile(filepath.Join(root, ListFile))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("lbu list: %w", err)
	}
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines, nil
}

// writeList replaces the list atomically (write + fsync + rename), unlike lbu's ">>" appends.
func writeList(root string, lines []string) error {
	p := filepath.Join(root, ListFile)
	if err := os.MkdirAll(filepath.Dir(p), 0755); err != nil {
		return fmt.Errorf("lbu list: %w", err)
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return writeFileAtomic(p, []byte(b.String()), 0644)
}

// UpdateList adds (or with remove, removes) paths to the include ('+') or exclude ('-') side of
// lbu.list with lbu's semantics: including X removes "-X", excluding X removes "+X"; an exact
// duplicate is not added twice. It returns lbu's -v messages.
func UpdateList(root string, sign byte, paths []string, remove bool) ([]string, error) {
	lines, err := readList(root)
	if err != nil {
		return nil, err
	}
	other := byte('-')
	if sign == '-' {
		other = '+'
	}
	var msgs []string
	for _, raw := range paths {
		p := normalize(raw)
		if p == "" {
			return nil, fmt.Errorf("lbu: refusing empty path %q", raw)
		}
		entry := string(sign) + p
		idx := indexOf(lines, entry)
		if remove {
			if idx < 0 {
				msgs = append(msgs, fmt.Sprintf("%s is not in %s", p, "/"+ListFile))
				continue
			}
			lines = without(lines, entry)
			msgs = append(msgs, fmt.Sprintf("Removing %s from %s", p, "/"+ListFile))
			continue
		}
		lines = without(lines, string(other)+p)
		if idx >= 0 {
			msgs = append(msgs, fmt.Sprintf("%s is already in %s", p, "/"+ListFile))
			continue
		}
		lines = append(lines, entry)
		msgs = append(msgs, fmt.Sprintf("Adding %s to %s", p, "/"+ListFile))
	}
	if err := writeList(root, lines); err != nil {
		return nil, err
	}
	return msgs, nil
}

// ListEntries returns the paths on one side ('+' or '-') of lbu.list.
func ListEntries(root string, sign byte) ([]string, error) {
	lines, err := readList(root)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range lines {
		if len(l) > 1 && l[0] == sign {
			out = append(out, l[1:])
		}
	}
	return out, nil
}

func indexOf(lines []string, s string) int {
	for i, l := range lines {
		if l == s {
			return i
		}
	}
	return -1
}

func without(lines []string, s string) []string {
	out := lines[:0:0]
	for _, l := range lines {
		if l != s {
			out = append(out, l)
		}
	}
	return out
}
