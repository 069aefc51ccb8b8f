package index_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ramboot/ramboot/internal/apkinstall/apktest"
	"github.com/ramboot/ramboot/internal/apkinstall/index"
	"github.com/ramboot/ramboot/internal/apkinstall/sign"
	"github.com/ramboot/ramboot/internal/testdata"
)

func TestLoadReal(t *testing.T) {
	keys, err := sign.LoadKeyRing(testdata.Path(t, "alpine", "keys"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ repo, key string }{
		{"v3.19/x86_64", "alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub"},
		{"v3.13/aarch64", "alpine-devel@lists.alpinelinux.org-58199dcc.rsa.pub"},
	}
	for _, tc := range tests {
		ix, err := index.Load(testdata.Path(t, "alpine", tc.repo, "APKINDEX.tar.gz"), keys, false)
		if err != nil {
			t.Fatalf("Load(%s) error: %v", tc.repo, err)
		}
		if ix.SignedBy != tc.key {
			t.Errorf("Load(%s).SignedBy = %q, want %q", tc.repo, ix.SignedBy, tc.key)
		}
		if !strings.Contains(string(ix.Text), "\nP:busybox\n") {
			t.Errorf("Load(%s): APKINDEX lacks busybox", tc.repo)
		}
	}
}

func TestLoadRefused(t *testing.T) {
	real, err := os.ReadFile(testdata.Path(t, "alpine", "v3.19", "x86_64", "APKINDEX.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	alpineKeys, err := sign.LoadKeyRing(testdata.Path(t, "alpine", "keys"))
	if err != nil {
		t.Fatal(err)
	}
	empty, err := sign.LoadKeyRing(filepath.Join(t.TempDir(), "none"))
	if err != nil {
		t.Fatal(err)
	}
	// Flip one byte inside the signed member: the signature no longer matches.
	broken := append([]byte{}, real...)
	ms := apktest.Members(t, real)
	broken[len(ms[0])+len(ms[1])/2] ^= 0xff
	// A different key under the trusted key's file name.
	impostor := apktest.NewKey(t, "alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub")
	impDir := t.TempDir()
	impostor.WritePub(t, impDir)
	impKeys, err := sign.LoadKeyRing(impDir)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name      string
		raw       []byte
		keys      *sign.KeyRing
		allow     bool
		untrusted bool // want sign.ErrUntrusted
		ok        bool
	}{
		{"unknown key", real, empty, false, true, false},
		{"unknown key allowed", real, empty, true, false, true},
		{"broken signature", broken, alpineKeys, false, false, false},
		{"broken signature even if allowed", broken, alpineKeys, true, false, false},
		{"wrong key of that name", real, impKeys, true, false, false},
		{"unsigned", ms[1], alpineKeys, false, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ix, err := index.Parse(tc.raw, tc.keys, tc.allow)
			if tc.ok {
				if err != nil || ix.SignedBy != "" {
					t.Fatalf("Parse() = %v, %v; want untrusted success", ix, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse() error = nil, want refusal")
			}
			if got := errors.Is(err, sign.ErrUntrusted); got != tc.untrusted {
				t.Errorf("Parse() error %q: untrusted = %v, want %v", err, got, tc.untrusted)
			}
		})
	}
}
