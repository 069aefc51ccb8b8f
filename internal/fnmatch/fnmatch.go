// Package fnmatch is fnmatch(3): shell globs with '*', '?', bracket expressions ('[a-z]',
// '[!x]', '[^x]') and backslash escapes. Unlike path.Match, '/' is an ordinary character unless
// PathName is given, and a malformed pattern never fails (an unterminated '[' is a literal).
// Kernel module aliases (modules.alias) and apk's protected_paths rules are both fnmatch globs.
package fnmatch

// Flags modify matching, as fnmatch(3)'s flags do.
type Flags uint8

// PathName is FNM_PATHNAME: '/' in name is matched only by a literal '/' in the pattern.
const PathName Flags = 1

// Match reports whether name matches the glob pattern.
func Match(pattern, name string, flags Flags) bool {
	pathname := flags&PathName != 0
	isSep := func(i int) bool { return pathname && name[i] == '/' }
	px, nx := 0, 0
	nextPx, nextNx := -1, -1 // where to resume when the last '*' absorbs one more character
	for px < len(pattern) || nx < len(name) {
		if px < len(pattern) {
			switch c := pattern[px]; c {
			case '*':
				nextPx, nextNx = px, nx+1
				px++
				continue
			case '?':
				if nx < len(name) && !isSep(nx) {
					px++
					nx++
					continue
				}
			case '[':
				if nx < len(name) && !isSep(nx) {
					if ok, width, valid := matchBracket(pattern[px:], name[nx]); valid {
						if ok {
							px += width
							nx++
							continue
						}
					} else if name[nx] == '[' { // unterminated: a literal '['
						px++
						nx++
						continue
					}
				}
			case '\\':
				if px+1 < len(pattern) {
					if nx < len(name) && name[nx] == pattern[px+1] {
						px += 2
						nx++
						continue
					}
				} else if nx < len(name) && name[nx] == '\\' { // trailing: a literal '\'
					px++
					nx++
					continue
				}
			default:
				if nx < len(name) && name[nx] == c {
					px++
					nx++
					continue
				}
			}
		}
		if nextNx > 0 && nextNx <= len(name) && !isSep(nextNx-1) {
			px, nx = nextPx, nextNx
			continue
		}
		return false
	}
	return true
}

// matchBracket matches c against the bracket expression at the start of p; width is its length,
// valid false if it is unterminated.
func matchBracket(p string, c byte) (match bool, width int, valid bool) {
	i := 1
	negate := false
	if i < len(p) && (p[i] == '!' || p[i] == '^') {
		negate = true
		i++
	}
	first := true
	for i < len(p) {
		if p[i] == ']' && !first {
			return match != negate, i + 1, true
		}
		first = false
		lo := p[i]
		if lo == '\\' && i+1 < len(p) {
			i++
			lo = p[i]
		}
		hi := lo
		if i+2 < len(p) && p[i+1] == '-' && p[i+2] != ']' {
			hi = p[i+2]
			if hi == '\\' && i+3 < len(p) {
				i++
				hi = p[i+2]
			}
			i += 2
		}
		if lo <= c && c <= hi {
			match = true
		}
		i++
	}
	return false, 0, false
}
