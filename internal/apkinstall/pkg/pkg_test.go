package pkg

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ramboot/ramboot/internal/testdata"
)

// readAPKINDEX returns the APKINDEX member of an APKINDEX.tar.gz without verifying the signature
// (verification belongs to the index package).
func readAPKINDEX(t *testing.T, path string) []byte {
	t.Helper()
	return testdata.TarGzMember(t, path, "APKINDEX")
}

func TestParseDependency(t *testing.T) {
	tests := []struct {
		in   string
		want Dependency
	}{
		{"busybox", Dependency{Name: "busybox", Op: Any}},
		{"so:libc.musl-x86_64.so.1", Dependency{Name: "so:libc.musl-x86_64.so.1", Op: Any}},
		{"cmd:ssh", Dependency{Name: "cmd:ssh", Op: Any}},
		{"pc:libfoo>=1.2", Dependency{Name: "pc:libfoo", Op: Greater | Equal, Version: "1.2"}},
		{"/bin/sh", Dependency{Name: "/bin/sh", Op: Any}},
		{"a@testing", Dependency{Name: "a", Tag: "testing", Op: Any}},
		{"a@edge>=1.2", Dependency{Name: "a", Tag: "edge", Op: Greater | Equal, Version: "1.2"}},
		{"name~1.3", Dependency{Name: "name", Op: Fuzzy | Equal, Version: "1.3"}},
		{"name<2", Dependency{Name: "name", Op: Less, Version: "2"}},
		{"name<=2", Dependency{Name: "name", Op: Less | Equal, Version: "2"}},
		{"name>~2", Dependency{Name: "name", Op: Greater | Equal | Fuzzy, Version: "2"}},
		{"name=1.0-r0", Dependency{Name: "name", Op: Equal, Version: "1.0-r0"}},
		{"!name", Dependency{Name: "name", Op: Any, Conflict: true}},
		{"!name<2", Dependency{Name: "name", Op: Less, Version: "2", Conflict: true}},
		{"name><Q1eVpkasfqZAukAXFYbgwt4xAMZWU=", Dependency{Name: "name", Op: Checksum, Version: "Q1eVpkasfqZAukAXFYbgwt4xAMZWU="}},
	}
	for _, tt := range tests {
		got, err := ParseDependency(tt.in)
		if err != nil {
			t.Errorf("ParseDependency(%q) error %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParseDependency(%q) mismatch (-want +got):\n%s", tt.in, diff)
		}
		if s := got.String(); s != tt.in {
			t.Errorf("ParseDependency(%q).String() = %q, want %q", tt.in, s, tt.in)
		}
	}
}

func TestParseDependencyErrors(t *testing.T) {
	tests := []struct {
		in   string
		want error
	}{
		{"", ErrSyntax},
		{"!", ErrSyntax},
		{">=1.0", ErrSyntax},
		{"a=1.0=", ErrVersion},
		{"a>=foo", ErrVersion},
		{"a=", ErrVersion},
		{"a><", ErrSyntax},
	}
	for _, tt := range tests {
		_, err := ParseDependency(tt.in)
		if !errors.Is(err, tt.want) {
			t.Errorf("ParseDependency(%q) error = %v, want %v", tt.in, err, tt.want)
		}
	}
}

func TestProvidedBy(t *testing.T) {
	p := &Package{Name: "a", Version: "2", Checksum: "Q1xx"}
	tests := []struct {
		dep  string
		p    *Package
		have string
		want bool
	}{
		{"a", p, "2", true},
		{"a>=2", p, "2", true},
		{"a<2", p, "2", false},
		{"!a", p, "2", false},
		{"!a", nil, "", true},
		{"a", nil, "", false},
		{"a>=3", p, "", true}, // unversioned provide: apk's null version matches any operator
		{"a><Q1xx", p, "2", true},
		{"a><Q1yy", p, "2", false},
	}
	for _, tt := range tests {
		d, err := ParseDependency(tt.dep)
		if err != nil {
			t.Fatal(err)
		}
		if got := d.ProvidedBy(nil, tt.p, tt.have); got != tt.want {
			t.Errorf("ParseDependency(%q).ProvidedBy(%v, %q) = %v, want %v", tt.dep, tt.p, tt.have, got, tt.want)
		}
	}
	// A conflict is satisfied by the package declaring it (D:!mail-reader p:mail-reader).
	self := &Package{Name: "mailreadsolo", Version: "1"}
	d, _ := ParseDependency("!mail-reader")
	if !d.ProvidedBy(self, self, "") {
		t.Errorf("conflict declared by the provider itself: ProvidedBy = false, want true")
	}
}

// TestRealIndexRoundTrip parses Alpine 3.19.1's real APKINDEX and writes it back: apk's field
// order must reproduce the file byte for byte.
func TestRealIndexRoundTrip(t *testing.T) {
	raw := readAPKINDEX(t, testdata.Path(t, "alpine", "v3.19", "x86_64", "APKINDEX.tar.gz"))
	pkgs, err := ParseIndex(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) != 100 {
		t.Fatalf("ParseIndex(3.19 APKINDEX) = %d packages, want 100", len(pkgs))
	}
	var out bytes.Buffer
	for _, p := range pkgs {
		if p.Uninstallable {
			t.Errorf("%s marked uninstallable", p)
		}
		if err := WriteIndexRecord(&out, p); err != nil {
			t.Fatal(err)
		}
		out.WriteByte('\n')
	}
	if diff := cmp.Diff(string(raw), out.String()); diff != "" {
		t.Errorf("APKINDEX round trip mismatch (-orig +written):\n%s", diff)
	}
	var musl *Package
	for _, p := range pkgs {
		if p.Name == "musl" {
			musl = p
		}
	}
	if musl == nil || len(musl.Provides) != 1 || musl.Provides[0].Name != "so:libc.musl-x86_64.so.1" || musl.Provides[0].Version != "1" {
		t.Errorf("musl provides = %+v, want so:libc.musl-x86_64.so.1=1", musl)
	}
}

func TestParseIndexEdgeCases(t *testing.T) {
	const text = `C:Q1EyN5AdpAOBJWKMR89pp/C66o+OE=
P:a
V:1
S:1
I:1
D:b>=foo
Z:ignored
x:unknown-lowercase

C:Q1eVpkasfqZAukAXFYbgwt4xAMZWU=
P:b
V:2
X:unknown-uppercase
r:c
q:10
s:testing
F:usr/bin
R:b
Z:Q1xxx
`
	pkgs, err := ParseIndex(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) != 2 {
		t.Fatalf("ParseIndex = %d packages, want 2", len(pkgs))
	}
	if !pkgs[0].Uninstallable {
		t.Errorf("a with broken dependency version: Uninstallable = false, want true")
	}
	if !pkgs[1].Uninstallable {
		t.Errorf("b with unknown upper-case field: Uninstallable = false, want true")
	}
	if pkgs[1].ReplacesPriority != 10 || pkgs[1].RepoTag != "testing" || len(pkgs[1].Replaces) != 1 {
		t.Errorf("b installed fields = %+v, want r:c q:10 s:testing", pkgs[1])
	}
	var buf bytes.Buffer
	if err := WriteInstalledFields(&buf, pkgs[1]); err != nil {
		t.Fatal(err)
	}
	if got, want := buf.String(), "r:c\nq:10\ns:testing\n"; got != want {
		t.Errorf("WriteInstalledFields = %q, want %q", got, want)
	}

	for _, bad := range []string{"P:a\n\n", "V:1\nS:x\n", "C:Q1\nP:a\nV:1\nS:notanumber\n", "P:a\nV:1\nD:b@tag\n"} {
		if _, err := ParseIndex(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseIndex(%q) succeeded, want error", bad)
		}
	}
}

// FuzzParseDependency: whatever parses must render to text that parses back to the same value.
func FuzzParseDependency(f *testing.F) {
	for _, s := range []string{"a", "!a>=1.2-r3", "so:libc.musl-x86_64.so.1=1", "a@tag~2", "a><Q1abc=", "a<=1_rc2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDependency(s)
		if err != nil {
			return
		}
		d2, err := ParseDependency(d.String())
		if err != nil {
			t.Fatalf("ParseDependency(%q.String() = %q) error %v", s, d.String(), err)
		}
		if diff := cmp.Diff(d, d2); diff != "" {
			t.Fatalf("round trip of %q via %q (-first +second):\n%s", s, d.String(), diff)
		}
	})
}

// TestRealInstalledDBHeaders reads the installed database of Alpine's real 3.19.4 minirootfs
// (written by apk 2.14.4) and checks that WriteIndexRecord + WriteInstalledFields reproduce each
// record's lines up to its file list byte for byte.
func TestRealInstalledDBHeaders(t *testing.T) {
	path := testdata.Path(t, "alpine", "minirootfs", "alpine-minirootfs-3.19.4-x86_64.tar.gz")
	raw := testdata.TarGzMember(t, path, "lib/apk/db/installed")
	pkgs, err := ParseIndex(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	records := strings.Split(strings.TrimSuffix(string(raw), "\n\n"), "\n\n")
	if len(records) != len(pkgs) || len(pkgs) < 10 {
		t.Fatalf("ParseIndex(installed) = %d packages, file has %d records", len(pkgs), len(records))
	}
	for i, p := range pkgs {
		// the header is everything before the first directory/file line
		var header strings.Builder
		for _, l := range strings.SplitAfter(records[i]+"\n", "\n") {
			if strings.HasPrefix(l, "F:") || strings.HasPrefix(l, "f:") {
				break
			}
			header.WriteString(l)
		}
		var got bytes.Buffer
		if err := WriteIndexRecord(&got, p); err != nil {
			t.Fatal(err)
		}
		if err := WriteInstalledFields(&got, p); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(header.String(), got.String()); diff != "" {
			t.Errorf("installed record %s (-apk +written):\n%s", p, diff)
		}
	}
}
