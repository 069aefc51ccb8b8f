package fnmatch

import "testing"

func TestMatch(t *testing.T) {
	// Without flags, as kernel module aliases are matched (modules.alias).
	noFlags := []struct {
		pattern, name string
		want          bool
	}{
		{"abc", "abc", true},
		{"abc", "abd", false},
		{"a*", "a", true},
		{"a*c", "abbbc", true},
		{"a*c", "abbbd", false},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"a[bx]c", "axc", true},
		{"a[!bx]c", "axc", false},
		{"a[!bx]c", "ayc", true},
		{"a[0-9]", "a5", true},
		{"a[0-9]", "ax", false},
		{"of:N*T*Cfoo/bar*", "of:NxTyCfoo/bar", true}, // '/' is ordinary
		{`a\*b`, "a*b", true},
		{`a\*b`, "axb", false},
		{"a[", "a[", true},
		{"*", "", true},
		{"pci:v00001AF4d*sv*sd*bc*sc*i*", "pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00", true},
		{"a*", "a/b", true},
		{"a?b", "a/b", true},
	}
	for _, tt := range noFlags {
		if got := Match(tt.pattern, tt.name, 0); got != tt.want {
			t.Errorf("Match(%q, %q, 0) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
	// FNM_PATHNAME, as apk's protected_paths rules are matched per component.
	pathName := []struct {
		pattern, name string
		want          bool
	}{
		{"etc", "etc", true},
		{"etc", "etcx", false},
		{"*", "anything", true},
		{"*.conf", "a.conf", true},
		{"*.conf", "a.conf.bak", false},
		{"ca-cert-*.pem", "ca-cert-Foo_Bar.pem", true},
		{"[0-9a-f]{8}.[r0-9]*", "{8}.0", false},
		{"[0-9a-f]{8}.[r0-9]*", "a{8}.r1", true}, // {8} is literal in fnmatch
		{"[!a]*", "bcd", true},
		{"[!a]*", "abc", false},
		{"[^a]x", "bx", true},
		{"?", "ab", false},
		{"a?c", "abc", true},
		{`\*`, "*", true},
		{`\*`, "a", false},
		{"[]]", "]", true},
		{"[a-", "[a-", true}, // unterminated bracket is literal
		{"*", "", true},
		{"", "", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"a*", "a/b", false},
		{"a?b", "a/b", false},
		{"a[/]b", "a/b", false},
		{"a/*", "a/b", true},
		{`a\`, `a\`, true}, // a trailing backslash is literal
	}
	for _, tt := range pathName {
		if got := Match(tt.pattern, tt.name, PathName); got != tt.want {
			t.Errorf("Match(%q, %q, PathName) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}
