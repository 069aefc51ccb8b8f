// Package signer produces what internal/apkinstall/sign verifies: abuild-sign's RSA signatures
// over gzip members, and abuild-keygen's key pairs. Host tooling only: it needs crypto/x509 for
// private keys, which PID 1 (verification only) does not link.
package signer

import (
	"archive/tar"
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ramboot/ramboot/internal/apkinstall/sign"
)

// Signer signs apk v2 segments as abuild-sign does: RSA PKCS#1 v1.5 over SHA-1 of the raw bytes
// of one gzip member, stored as .SIGN.RSA.<KeyName> in a cut tar segment of its own gzip member.
type Signer struct {
	Key     *rsa.PrivateKey
	KeyName string // public key file name apk looks up in its keys directory, e.g. "me.rsa.pub"
}

// LoadSigner reads a PEM RSA private key (PKCS#1 "RSA PRIVATE KEY", as abuild-keygen/openssl 1.x
// write, or PKCS#8 "PRIVATE KEY", as openssl 3 writes). The key name is the file's base name plus
// ".pub", as abuild-sign derives it.
func LoadSigner(path string) (*Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	key, err := ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	return &Signer{Key: key, KeyName: filepath.Base(path) + ".pub"}, nil
}

// ParsePrivateKey decodes a PEM RSA private key in PKCS#1 or PKCS#8 form.
func ParsePrivateKey(data []byte) (*rsa.PrivateKey, error) {
	blk, _ := pem.Decode(data)
	if blk == nil {
		return nil, errors.New("no PEM block")
	}
	switch blk.Type {
	case "RSA PRIVATE KEY":
		return x509.ParsePKCS1PrivateKey(blk.Bytes)
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, err
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("private key is %T, want RSA", k)
		}
		return rk, nil
	}
	if strings.Contains(blk.Type, "ENCRYPTED") || blk.Headers["Proc-Type"] != "" {
		return nil, fmt.Errorf("PEM block %q is encrypted; use an unencrypted key as abuild does", blk.Type)
	}
	return nil, fmt.Errorf("PEM block %q, want RSA PRIVATE KEY", blk.Type)
}

// SignatureName is the signature file name for this signer: ".SIGN.RSA.<KeyName>".
func (s *Signer) SignatureName() string { return sign.SigFilePrefix + "RSA." + s.KeyName }

// Sign returns the raw RSA SHA-1 PKCS#1 v1.5 signature of data.
func (s *Signer) Sign(data []byte) ([]byte, error) {
	h := crypto.SHA1.New()
	h.Write(data)
	sig, err := rsa.SignPKCS1v15(rand.Reader, s.Key, crypto.SHA1, h.Sum(nil))
	if err != nil {
		return nil, fmt.Errorf("sign with %s: %w", s.KeyName, err)
	}
	return sig, nil
}

// SignatureMember returns the gzip member to prepend to member (the raw bytes of the gzip member
// being signed): a tar segment holding the one signature file, with the tar end-of-archive blocks
// cut so that the members inflate to one continuous tar stream. mtime is the entry's
// modification time (fixed for reproducible output).
func (s *Signer) SignatureMember(member []byte, mtime time.Time) ([]byte, error) {
	sig, err := s.Sign(member)
	if err != nil {
		return nil, err
	}
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	hdr := &tar.Header{
		Name:     s.SignatureName(),
		Mode:     0o644,
		Size:     int64(len(sig)),
		ModTime:  mtime,
		Typeflag: tar.TypeReg,
		Uname:    "root",
		Gname:    "root",
		Format:   tar.FormatUSTAR,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, fmt.Errorf("signature segment: %w", err)
	}
	if _, err := tw.Write(sig); err != nil {
		return nil, fmt.Errorf("signature segment: %w", err)
	}
	// Flush pads the entry to a block boundary; not calling Close leaves out the end blocks
	// (abuild-tar --cut).
	if err := tw.Flush(); err != nil {
		return nil, fmt.Errorf("signature segment: %w", err)
	}
	return sign.GzipMember(tb.Bytes())
}
