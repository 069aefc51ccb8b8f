// Package version implements apk's version syntax and ordering (apk-tools 3.x rules).
//
// Grammar: digits{.digits}...{letter}{_suffix{digits}}...{~hexhash}{-rN}.
// Comparison walks both token streams; the first differing token decides, and when one
// stream ends first the "larger token type is the smaller version" rule applies, except that a
// pre-release suffix (alpha, beta, pre, rc) always sorts below the shorter version.
package version

// Comparison result bits. They are the bits apk uses for dependency operators, so a dependency
// matches when Match's comparison result shares a bit with the operator mask.
const (
	Equal   uint8 = 1 << iota // =
	Less                      // <
	Greater                   // >
	Fuzzy                     // ~ (prefix match); always combined with Equal in a dependency
)

// Any is the operator mask of an unversioned dependency: every version matches.
const Any = Equal | Less | Greater

type tokenType uint8

// Token types in apk's order; the order is significant for comparison.
const (
	tInitialDigit tokenType = iota
	tDigit
	tLetter
	tSuffix
	tSuffixNo
	tCommitHash
	tRevisionNo
	tEnd
	tInvalid
)

// Suffix ranks: pre-release suffixes sort below "no suffix", post-release ones above.
const (
	sufInvalid = iota
	sufAlpha
	sufBeta
	sufPre
	sufRC
	sufNone
	sufCVS
	sufSVN
	sufGit
	sufHg
	sufP
)

// suffixRank is a switch, not a map literal: a package-level map is built at start-up, which
// PID 1 pays for on every boot (~2 ms under QEMU TCG) even when no version is compared.
func suffixRank(s string) (int, bool) {
	switch s {
	case "alpha":
		return sufAlpha, true
	case "beta":
		return sufBeta, true
	case "pre":
		return sufPre, true
	case "rc":
		return sufRC, true
	case "cvs":
		return sufCVS, true
	case "svn":
		return sufSVN, true
	case "git":
		return sufGit, true
	case "hg":
		return sufHg, true
	case "p":
		return sufP, true
	}
	return sufInvalid, false
}

type token struct {
	typ    tokenType
	suffix int
	number uint64
	value  string
}

// tokenizer walks a version string token by token.
type tokenizer struct {
	s   string
	tok token
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isLower(c byte) bool { return c >= 'a' && c <= 'z' }
func isHex(c byte) bool   { return isDigit(c) || (c >= 'a' && c <= 'f') }

func (t *tokenizer) digits() {
	i := 0
	var n uint64
	for i < len(t.s) && isDigit(t.s[i]) {
		n = n*10 + uint64(t.s[i]-'0')
		i++
	}
	t.tok.number = n
	t.tok.value = t.s[:i]
	t.s = t.s[i:]
	if i == 0 {
		t.tok.typ = tInvalid
	}
}

func (t *tokenizer) first() {
	t.tok.typ = tInitialDigit
	t.digits()
}

func (t *tokenizer) next() {
	if len(t.s) == 0 {
		t.tok.typ = tEnd
		return
	}
	c := t.s[0]
	switch {
	case isLower(c):
		if t.tok.typ > tDigit {
			t.tok.typ = tInvalid
			return
		}
		t.tok.value = t.s[:1]
		t.tok.typ = tLetter
		t.s = t.s[1:]
	case c == '.' || isDigit(c):
		if c == '.' {
			if t.tok.typ > tDigit {
				t.tok.typ = tInvalid
				return
			}
			t.s = t.s[1:]
		}
		switch t.tok.typ {
		case tInitialDigit, tDigit:
			t.tok.typ = tDigit
		case tSuffix:
			t.tok.typ = tSuffixNo
		default:
			t.tok.typ = tInvalid
			return
		}
		t.digits()
	case c == '_':
		if t.tok.typ > tSuffixNo {
			t.tok.typ = tInvalid
			return
		}
		t.s = t.s[1:]
		i := 0
		for i < len(t.s) && isLower(t.s[i]) {
			i++
		}
		t.tok.value = t.s[:i]
		t.s = t.s[i:]
		r, ok := suffixRank(t.tok.value)
		if !ok {
			t.tok.typ = tInvalid
			return
		}
		t.tok.suffix = r
		t.tok.typ = tSuffix
	case c == '~':
		if t.tok.typ >= tCommitHash {
			t.tok.typ = tInvalid
			return
		}
		t.s = t.s[1:]
		i := 0
		for i < len(t.s) && isHex(t.s[i]) {
			i++
		}
		t.tok.value = t.s[:i]
		t.s = t.s[i:]
		if i == 0 {
			t.tok.typ = tInvalid
			return
		}
		t.tok.typ = tCommitHash
	case c == '-':
		if t.tok.typ >= tRevisionNo || len(t.s) < 2 || t.s[1] != 'r' {
			t.tok.typ = tInvalid
			return
		}
		t.s = t.s[2:]
		t.tok.typ = tRevisionNo
		t.digits()
	default:
		t.tok.typ = tInvalid
	}
}

// Valid reports whether v is a syntactically valid apk version.
func Valid(v string) bool {
	t := tokenizer{s: v}
	for t.first(); t.tok.typ < tEnd; t.next() {
	}
	return t.tok.typ == tEnd
}

func cmpResult[T uint64 | byte | int](a, b T) uint8 {
	switch {
	case a < b:
		return Less
	case a > b:
		return Greater
	}
	return Equal
}

func stringCmp(a, b string) uint8 {
	switch {
	case a < b:
		return Less
	case a > b:
		return Greater
	}
	return Equal
}

func tokenCmp(a, b *token) uint8 {
	switch a.typ {
	case tDigit:
		// A leading zero makes apk compare digit runs as strings (Gentoo rule):
		// 8.2.0 < 8.2.001, 8.2.0015 < 8.2.002.
		if a.value[0] == '0' || b.value[0] == '0' {
			return stringCmp(a.value, b.value)
		}
		return cmpResult(a.number, b.number)
	case tInitialDigit, tSuffixNo, tRevisionNo:
		return cmpResult(a.number, b.number)
	case tLetter:
		return cmpResult(a.value[0], b.value[0])
	case tSuffix:
		return cmpResult(a.suffix, b.suffix)
	default:
		return stringCmp(a.value, b.value)
	}
}

// CompareMask compares a with b and returns one of Less, Equal, Greater. With fuzzy, b being a
// prefix of a (token-wise) counts as Equal. An empty string stands for apk's null version (an
// unversioned provide): null against a real version yields Less|Equal|Greater, i.e. "matches any
// operator", exactly as apk does.
func CompareMask(a, b string, fuzzy bool) uint8 {
	if a == "" || b == "" {
		if a == "" && b == "" {
			return Equal
		}
		return Equal | Less | Greater
	}
	ta, tb := tokenizer{s: a}, tokenizer{s: b}
	ta.first()
	tb.first()
	for ta.tok.typ == tb.tok.typ && ta.tok.typ < tEnd {
		if r := tokenCmp(&ta.tok, &tb.tok); r != Equal {
			return r
		}
		ta.next()
		tb.next()
	}
	at, bt := ta.tok, tb.tok
	if at.typ == bt.typ {
		return Equal
	}
	if bt.typ == tEnd && fuzzy {
		return Equal
	}
	if at.typ == tSuffix && at.suffix < sufNone {
		return Less
	}
	if bt.typ == tSuffix && bt.suffix < sufNone {
		return Greater
	}
	if at.typ > bt.typ {
		return Less
	}
	return Greater
}

// Compare returns -1, 0 or +1 as a sorts before, equal to, or after b in apk's ordering.
// Null ("") against a real version compares as 0, as in apk's provider selection.
func Compare(a, b string) int {
	switch CompareMask(a, b, false) {
	case Less:
		return -1
	case Greater:
		return 1
	}
	return 0
}

// Match reports whether version have satisfies operator mask op (bits Equal, Less, Greater,
// Fuzzy) against want. An op containing all of Any matches everything.
func Match(have string, op uint8, want string) bool {
	if op&Any == Any {
		return true
	}
	return CompareMask(have, want, op&Fuzzy != 0)&op != 0
}

// ParseOp converts operator text (any combination of < > = ~) to a mask; ok is false for
// anything else or an empty operator.
func ParseOp(s string) (op uint8, ok bool) {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '<':
			op |= Less
		case '>':
			op |= Greater
		case '=':
			op |= Equal
		case '~':
			op |= Fuzzy | Equal
		default:
			return 0, false
		}
	}
	return op, op != 0
}

// OpString renders an operator mask the way apk prints it ("" for Any, "?" if unprintable).
func OpString(op uint8) string {
	switch op {
	case Less:
		return "<"
	case Less | Equal:
		return "<="
	case Less | Equal | Fuzzy:
		return "<~"
	case Equal | Fuzzy, Fuzzy:
		return "~"
	case Equal:
		return "="
	case Greater | Equal:
		return ">="
	case Greater | Equal | Fuzzy:
		return ">~"
	case Greater:
		return ">"
	case Less | Greater:
		return "><"
	case Any:
		return ""
	}
	return "?"
}
