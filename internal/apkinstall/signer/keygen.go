package signer

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// DefaultKeyBits is abuild-keygen's key size.
const DefaultKeyBits = 4096

// KeyPaths returns the private and public key file names for name, as abuild-keygen names them:
// NAME.rsa and NAME.rsa.pub (a trailing ".rsa" on name is not doubled).
func KeyPaths(name string) (priv, pub string) {
	base := strings.TrimSuffix(name, ".rsa")
	return base + ".rsa", base + ".rsa.pub"
}

// GenerateKeyPair creates an RSA key of the given size and writes it as abuild-keygen does: the
// PEM PKCS#1 private key to NAME.rsa (mode 0600) and the PEM PKIX public key to NAME.rsa.pub
// (0644). Existing files are never overwritten; on failure nothing is left behind.
func GenerateKeyPair(name string, bits int) (privPath, pubPath string, err error) {
	if bits < 1024 {
		return "", "", fmt.Errorf("key size %d bits: want at least 1024", bits)
	}
	privPath, pubPath = KeyPaths(name)
	for _, p := range []string{privPath, pubPath} {
		if _, err := os.Lstat(p); err == nil {
			return "", "", fmt.Errorf("key file %s: %w", p, fs.ErrExist)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", "", fmt.Errorf("key file %s: %w", p, err)
		}
	}
	key, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return "", "", fmt.Errorf("generate RSA key: %w", err)
	}
	privPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return "", "", fmt.Errorf("encode public key: %w", err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	if err := writeExclusive(privPath, privPEM, 0o600); err != nil {
		return "", "", err
	}
	if err := writeExclusive(pubPath, pubPEM, 0o644); err != nil {
		os.Remove(privPath)
		return "", "", err
	}
	return privPath, pubPath, nil
}

// writeExclusive creates name (failing if it exists) with perm, removing it again on error.
func writeExclusive(name string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("key file: %w", err)
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(name)
		return fmt.Errorf("key file %s: %w", name, werr)
	}
	// O_CREATE honours the umask; the private key must be 0600 regardless, the public 0644.
	if err := os.Chmod(name, perm); err != nil {
		os.Remove(name)
		return fmt.Errorf("key file %s: %w", name, err)
	}
	return nil
}
