package overlay

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func gzipBytes(t *testing.T, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func needOpenSSL(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("prerequisite missing: openssl binary (needed to produce reference encrypted files)")
	}
	return p
}

// Files made by the real `openssl enc` with both digests and all three key sizes must decrypt,
// and report the digest that worked.
func TestDecryptOpenSSLFiles(t *testing.T) {
	ossl := needOpenSSL(t)
	dir := t.TempDir()
	plain := gzipBytes(t, bytes.Repeat([]byte("etc/hosts 127.0.0.1 localhost\n"), 100))
	in := filepath.Join(dir, "in.gz")
	if err := os.WriteFile(in, plain, 0600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"aes-128-cbc", "aes-192-cbc", "aes-256-cbc"} {
		for _, md := range []Digest{DigestSHA256, DigestMD5} {
			t.Run(c+"/"+string(md), func(t *testing.T) {
				out := filepath.Join(dir, c+"."+string(md))
				cmd := exec.Command(ossl, "enc", "-"+c, "-md", string(md), "-salt", "-pass", "pass:s3cret", "-in", in, "-out", out)
				if b, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("openssl: %v: %s", err, b)
				}
				data, err := os.ReadFile(out)
				if err != nil {
					t.Fatal(err)
				}
				got, d, err := Decrypt(data, c, []byte("s3cret"))
				if err != nil {
					t.Fatalf("Decrypt(%s, md %s) error: %v", c, md, err)
				}
				if !bytes.Equal(got, plain) || d != md {
					t.Errorf("Decrypt(%s) = %d bytes digest %s, want %d bytes digest %s", c, len(got), d, len(plain), md)
				}
				if _, _, err := Decrypt(data, c, []byte("wrong")); !errors.Is(err, ErrBadPassword) {
					t.Errorf("Decrypt(%s, wrong password) error = %v, want ErrBadPassword", c, err)
				}
			})
		}
	}
}

// Our encryption must be readable by the real openssl (as Alpine's lbu and initramfs use it),
// and by our own Decrypt.
func TestEncryptRoundTrip(t *testing.T) {
	ossl := needOpenSSL(t)
	dir := t.TempDir()
	plain := gzipBytes(t, []byte("hello overlay\n"))
	for _, c := range []string{"aes-128-cbc", "aes-192-cbc", "aes-256-cbc"} {
		var b bytes.Buffer
		if err := Encrypt(&b, plain, c, []byte("pw"), rand.Reader); err != nil {
			t.Fatalf("Encrypt(%s): %v", c, err)
		}
		got, d, err := Decrypt(b.Bytes(), c, []byte("pw"))
		if err != nil || !bytes.Equal(got, plain) || d != DigestSHA256 {
			t.Errorf("Decrypt(Encrypt(%s)) = %q, %s, %v; want the plaintext, sha256, nil", c, got, d, err)
		}
		f := filepath.Join(dir, "ovl."+c)
		os.WriteFile(f, b.Bytes(), 0600)
		// No -md: OpenSSL 3's default (sha256) is what Alpine's initramfs uses.
		out, err := exec.Command(ossl, "enc", "-d", "-"+c, "-pass", "pass:pw", "-in", f).Output()
		if err != nil {
			t.Fatalf("openssl enc -d -%s of our file: %v", c, err)
		}
		if !bytes.Equal(out, plain) {
			t.Errorf("openssl decrypt of Encrypt(%s) = %q, want %q", c, out, plain)
		}
	}
}

func TestDecryptErrors(t *testing.T) {
	plain := gzipBytes(t, []byte("x"))
	var b bytes.Buffer
	if err := Encrypt(&b, plain, "aes-256-cbc", []byte("pw"), rand.Reader); err != nil {
		t.Fatal(err)
	}
	good := b.Bytes()
	truncated := good[:len(good)-5]
	flipped := append([]byte(nil), good...)
	flipped[len(flipped)-1] ^= 0x55
	tests := []struct {
		name   string
		data   []byte
		cipher string
		badPW  bool
	}{
		{"no header", plain, "aes-256-cbc", false},
		{"truncated", truncated, "aes-256-cbc", true},
		{"tampered last block", flipped, "aes-256-cbc", true},
		{"unsupported cipher", good, "des-ede3-cbc", false},
		{"wrong key size", good, "aes-128-cbc", true},
	}
	for _, tc := range tests {
		_, _, err := Decrypt(tc.data, tc.cipher, []byte("pw"))
		if err == nil {
			t.Errorf("Decrypt(%s) = nil error, want an error", tc.name)
			continue
		}
		if got := errors.Is(err, ErrBadPassword); got != tc.badPW {
			t.Errorf("Decrypt(%s) error %v: is ErrBadPassword = %v, want %v", tc.name, err, got, tc.badPW)
		}
	}
}

func TestBytesToKeyKnownVector(t *testing.T) {
	// `openssl enc -aes-256-cbc -md sha256 -pass pass:password -S 0001020304050607 -P`
	ossl := needOpenSSL(t)
	out, err := exec.Command(ossl, "enc", "-aes-256-cbc", "-md", "sha256", "-pass", "pass:password", "-S", "0001020304050607", "-P").Output()
	if err != nil {
		t.Fatalf("openssl -P: %v", err)
	}
	key, iv := bytesToKey(digestFunc(DigestSHA256), []byte("password"), []byte{0, 1, 2, 3, 4, 5, 6, 7}, 32, 16)
	want := []byte("key=" + upperHex(key) + "\niv =" + upperHex(iv) + "\n")
	if !bytes.Contains(out, want) {
		t.Errorf("bytesToKey = %s, want in openssl output %s", want, out)
	}
}

func upperHex(b []byte) string {
	const h = "0123456789ABCDEF"
	s := make([]byte, 0, 2*len(b))
	for _, c := range b {
		s = append(s, h[c>>4], h[c&15])
	}
	return string(s)
}
