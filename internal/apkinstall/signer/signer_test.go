package signer_test

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/ramboot/ramboot/internal/apkinstall/sign"
	"github.com/ramboot/ramboot/internal/apkinstall/signer"
)

func TestKeyPaths(t *testing.T) {
	tests := []struct{ in, priv, pub string }{
		{"me", "me.rsa", "me.rsa.pub"},
		{"dir/me.rsa", "dir/me.rsa", "dir/me.rsa.pub"},
		{"a@b.c-5f00", "a@b.c-5f00.rsa", "a@b.c-5f00.rsa.pub"},
	}
	for _, tt := range tests {
		priv, pub := signer.KeyPaths(tt.in)
		if priv != tt.priv || pub != tt.pub {
			t.Errorf("KeyPaths(%q) = %q, %q, want %q, %q", tt.in, priv, pub, tt.priv, tt.pub)
		}
	}
}

func TestGenerateKeyPair(t *testing.T) {
	dir := t.TempDir()
	priv, pub, err := signer.GenerateKeyPair(filepath.Join(dir, "builder"), 2048)
	if err != nil {
		t.Fatalf("GenerateKeyPair = %v, want nil", err)
	}
	for _, c := range []struct {
		path, pemType string
		mode          fs.FileMode
	}{{priv, "RSA PRIVATE KEY", 0o600}, {pub, "PUBLIC KEY", 0o644}} {
		st, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != c.mode {
			t.Errorf("mode of %s = %v, want %v", c.path, st.Mode().Perm(), c.mode)
		}
		b, _ := os.ReadFile(c.path)
		blk, _ := pem.Decode(b)
		if blk == nil || blk.Type != c.pemType {
			t.Errorf("PEM type of %s = %v, want %q", c.path, blk, c.pemType)
		}
	}
	// The public key must be the one verify.go loads (apk's keys directory format).
	pubData, _ := os.ReadFile(pub)
	pk, err := sign.ParsePublicKey(pubData)
	if err != nil {
		t.Fatalf("ParsePublicKey(%s) = %v", pub, err)
	}
	if pk.N.BitLen() != 2048 {
		t.Errorf("key size = %d, want 2048", pk.N.BitLen())
	}
	// Never overwrite an existing key.
	if _, _, err := signer.GenerateKeyPair(filepath.Join(dir, "builder"), 2048); !errors.Is(err, fs.ErrExist) {
		t.Errorf("GenerateKeyPair over existing files = %v, want ErrExist", err)
	}
	if _, _, err := signer.GenerateKeyPair(filepath.Join(dir, "small"), 512); err == nil {
		t.Errorf("GenerateKeyPair(512 bits) = nil, want an error")
	}
	if _, err := os.Stat(filepath.Join(dir, "small.rsa")); err == nil {
		t.Errorf("GenerateKeyPair(512 bits) left small.rsa behind")
	}
	if openssl, err := exec.LookPath("openssl"); err == nil {
		if out, err := exec.Command(openssl, "rsa", "-in", priv, "-check", "-noout").CombinedOutput(); err != nil {
			t.Errorf("openssl rsa -check %s: %v\n%s", priv, err, out)
		}
	}
}

func TestSignatureMember(t *testing.T) {
	dir := t.TempDir()
	privPath, pubPath, err := signer.GenerateKeyPair(filepath.Join(dir, "k"), 2048)
	if err != nil {
		t.Fatal(err)
	}
	s, err := signer.LoadSigner(privPath)
	if err != nil {
		t.Fatal(err)
	}
	if s.KeyName != "k.rsa.pub" || s.SignatureName() != ".SIGN.RSA.k.rsa.pub" {
		t.Errorf("LoadSigner(%s) KeyName, SignatureName = %q, %q, want k.rsa.pub, .SIGN.RSA.k.rsa.pub", privPath, s.KeyName, s.SignatureName())
	}
	member, err := sign.GzipMember([]byte("some tar bytes"))
	if err != nil {
		t.Fatal(err)
	}
	sm, err := s.SignatureMember(member, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	// One gzip member, one tar entry, no end-of-archive blocks (abuild-tar --cut).
	zr, err := gzip.NewReader(bytes.NewReader(sm))
	if err != nil {
		t.Fatal(err)
	}
	inflated, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if len(inflated) != 1024 {
		t.Errorf("signature segment inflates to %d bytes, want 1024 (header + 512-byte signature, no end blocks)", len(inflated))
	}
	tr := tar.NewReader(bytes.NewReader(inflated))
	h, err := tr.Next()
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := io.ReadAll(tr)
	if h.Name != ".SIGN.RSA.k.rsa.pub" {
		t.Errorf("signature file name = %q, want .SIGN.RSA.k.rsa.pub", h.Name)
	}
	keys := t.TempDir()
	pubData, _ := os.ReadFile(pubPath)
	os.WriteFile(filepath.Join(keys, "k.rsa.pub"), pubData, 0o644)
	kr, err := sign.LoadKeyRing(keys)
	if err != nil {
		t.Fatal(err)
	}
	if key, err := kr.VerifyData([]sign.Signature{{Name: h.Name, Value: sig}}, member); err != nil || key != "k.rsa.pub" {
		t.Errorf("VerifyData(our signature) = %q, %v, want k.rsa.pub, nil", key, err)
	}
	if _, err := kr.VerifyData([]sign.Signature{{Name: h.Name, Value: sig}}, append(member, 0)); err == nil {
		t.Errorf("VerifyData(other bytes) = nil, want a BAD signature error")
	}
	// openssl, as abuild-sign uses it, must agree.
	if openssl, err := exec.LookPath("openssl"); err == nil {
		data := filepath.Join(dir, "data")
		sigFile := filepath.Join(dir, "sig")
		os.WriteFile(data, member, 0o644)
		os.WriteFile(sigFile, sig, 0o644)
		if out, err := exec.Command(openssl, "dgst", "-sha1", "-verify", pubPath, "-signature", sigFile, data).CombinedOutput(); err != nil {
			t.Errorf("openssl dgst -sha1 -verify of our signature: %v\n%s", err, out)
		}
		// And we must sign with a key openssl 3 generated (PKCS#8 "PRIVATE KEY").
		o3 := filepath.Join(dir, "o3.rsa")
		if out, err := exec.Command(openssl, "genrsa", "-out", o3, "2048").CombinedOutput(); err != nil {
			t.Fatalf("openssl genrsa: %v\n%s", err, out)
		}
		if _, err := signer.LoadSigner(o3); err != nil {
			t.Errorf("LoadSigner(openssl genrsa key) = %v, want nil", err)
		}
	}
}

func TestParsePrivateKey(t *testing.T) {
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p8, _ := x509.MarshalPKCS8PrivateKey(k)
	tests := []struct {
		name    string
		data    []byte
		wantErr string
	}{
		{"pkcs1", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}), ""},
		{"pkcs8", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}), ""},
		{"public", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1}}), "want RSA PRIVATE KEY"},
		{"garbage", []byte("hello"), "no PEM block"},
	}
	for _, tt := range tests {
		got, err := signer.ParsePrivateKey(tt.data)
		switch {
		case tt.wantErr == "" && (err != nil || got.N.Cmp(k.N) != 0):
			t.Errorf("ParsePrivateKey(%s) = %v, want the key", tt.name, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("ParsePrivateKey(%s) = %v, want error containing %q", tt.name, err, tt.wantErr)
		}
	}
	if _, err := signer.LoadSigner(filepath.Join(t.TempDir(), "missing.rsa")); err == nil || !strings.Contains(err.Error(), "missing.rsa") {
		t.Errorf("LoadSigner(missing) = %v, want an error naming missing.rsa", err)
	}
}
