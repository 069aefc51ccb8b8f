package version

import (
	"bufio"
	"os"
	"strings"
	"testing"

	"github.com/ramboot/ramboot/internal/testdata"
)

// TestVersionData runs every line of apk-tools' own version.data vectors:
// "a OP b" must match, "a !OP b" must not, a bare version must be valid, "!v" invalid.
func TestVersionData(t *testing.T) {
	path := testdata.Path(t, "apk-tools-tests", "version.data")
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	lineNo, checked := 0, 0
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		switch len(fields) {
		case 0:
			continue
		case 1:
			v := fields[0]
			want := true
			if strings.HasPrefix(v, "!") {
				v, want = v[1:], false
			}
			if got := Valid(v); got != want {
				t.Errorf("line %d: Valid(%q) = %v, want %v", lineNo, v, got, want)
			}
		case 3:
			a, opText, b := fields[0], fields[1], fields[2]
			negate := strings.HasPrefix(opText, "!")
			opText = strings.TrimPrefix(opText, "!")
			op, ok := ParseOp(opText)
			if !ok {
				t.Fatalf("line %d: bad operator %q", lineNo, fields[1])
			}
			if got := Match(a, op, b); got == negate {
				t.Errorf("line %d: Match(%q, %q, %q) = %v, want %v", lineNo, a, opText, b, got, !negate)
			}
		default:
			t.Fatalf("line %d: unparseable %q", lineNo, sc.Text())
		}
		checked++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if checked < 700 {
		t.Fatalf("checked only %d vectors from %s, want >= 700", checked, path)
	}
}

func TestCompare(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1.0", "1.0", 0},
		{"1.0", "1.0.1", -1},
		{"1.0_rc1", "1.0", -1},
		{"1.0-r1", "1.0", 1},
		{"1.0a", "1.0.1", -1},
		{"8.2.0", "8.2.001", -1},
		{"1.0~1234", "1.0~2345", -1},
		{"1.0bc", "1.0b", -1},
		{"", "1.0", 0}, // null version: apk treats it as matching everything
		{"", "", 0},
	}
	for _, tt := range tests {
		if got := Compare(tt.a, tt.b); got != tt.want {
			t.Errorf("Compare(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestOpRoundTrip(t *testing.T) {
	for _, s := range []string{"<", "<=", "<~", "~", "=", ">=", ">~", ">", "><"} {
		op, ok := ParseOp(s)
		if !ok {
			t.Fatalf("ParseOp(%q) failed", s)
		}
		if got := OpString(op); got != s {
			t.Errorf("OpString(ParseOp(%q)) = %q, want %q", s, got, s)
		}
	}
	if _, ok := ParseOp("!"); ok {
		t.Errorf("ParseOp(%q) ok, want failure", "!")
	}
}

// FuzzCompare: the ordering must be antisymmetric and Equal must be reflexive.
func FuzzCompare(f *testing.F) {
	for _, s := range [][2]string{{"1.0", "1.0.1"}, {"1.0_rc1", "1.0"}, {"8.2.0", "8.2.001"}, {"1.0~ab", "1.0-r1"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if ab, ba := Compare(a, b), Compare(b, a); ab != -ba {
			t.Fatalf("Compare(%q, %q) = %d but Compare(%q, %q) = %d", a, b, ab, b, a, ba)
		}
		if a != "" && Compare(a, a) != 0 {
			t.Fatalf("Compare(%q, %q) = %d, want 0", a, a, Compare(a, a))
		}
	})
}
