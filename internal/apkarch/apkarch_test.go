package apkarch

import "testing"

func TestFromGOARCH(t *testing.T) {
	for _, tc := range []struct{ goarch, want string }{
		{"amd64", "x86_64"}, {"arm64", "aarch64"}, {"386", "x86"}, {"arm", "armv7"},
		{"loong64", "loongarch64"}, {"ppc64le", "ppc64le"}, {"s390x", "s390x"}, {"riscv64", "riscv64"},
	} {
		if got := FromGOARCH(tc.goarch); got != tc.want {
			t.Errorf("FromGOARCH(%q) = %q, want %q", tc.goarch, got, tc.want)
		}
		if !Known(tc.want) {
			t.Errorf("Known(%q) = false, want true", tc.want)
		}
	}
	for _, s := range []string{"", "amd64", "noarch", "x86-64"} {
		if Known(s) {
			t.Errorf("Known(%q) = true, want false", s)
		}
	}
}
