package overlay

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/md5"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
)

// openssl enc file layout: "Salted__" || 8-byte salt || CBC(PKCS#7-padded plaintext), with key
// and IV from EVP_BytesToKey(md, password, salt, count=1). OpenSSL >= 1.1.0 uses SHA-256 by
// default; older OpenSSL/LibreSSL (Alpine <= 3.8 era overlays) used MD5.

const saltMagic = "Salted__"

// ErrBadPassword is returned (wrapped) when no supported digest yields a valid plaintext:
// either the password is wrong or the file is corrupt. Nothing is extracted in that case.
var ErrBadPassword = errors.New("bad decrypt: wrong password or corrupt file")

// keyLen maps the supported openssl cipher names (and their short aliases) to AES key sizes.
var keyLen = map[string]int{
	"aes-128-cbc": 16, "aes128": 16,
	"aes-192-cbc": 24, "aes192": 24,
	"aes-256-cbc": 32, "aes256": 32,
}

// CipherSupported reports whether name is an openssl cipher this package can read and write.
func CipherSupported(name string) bool { _, ok := keyLen[name]; return ok }

// bytesToKey is OpenSSL's EVP_BytesToKey with one iteration:
// D_1 = H(pass||salt), D_i = H(D_{i-1}||pass||salt); key||iv = D_1||D_2||...
func bytesToKey(newHash func() hash.Hash, password, salt []byte, keyLen, ivLen int) (key, iv []byte) {
	var out, prev []byte
	for len(out) < keyLen+ivLen {
		h := newHash()
		h.Write(prev)
		h.Write(password)
		h.Write(salt)
		prev = h.Sum(nil)
		out = append(out, prev...)
	}
	return out[:keyLen], out[keyLen : keyLen+ivLen]
}

// Digest names the EVP_BytesToKey digest of an openssl enc file.
type Digest string

// Digests supported for decryption, tried in this order.
const (
	DigestSHA256 Digest = "sha256"
	DigestMD5    Digest = "md5"
)

func digestFunc(d Digest) func() hash.Hash {
	if d == DigestMD5 {
		return md5.New
	}
	return sha256.New
}

// Encrypt writes plaintext to w in `openssl enc -CIPHER -salt -md sha256` format (what Alpine's
// lbu produces with OpenSSL 3), with a fresh salt from rand.
func Encrypt(w io.Writer, plaintext []byte, cipherName string, password []byte, rand io.Reader) error {
	kl, ok := keyLen[cipherName]
	if !ok {
		return fmt.Errorf("encrypt: cipher %q is not supported (want aes-128-cbc, aes-192-cbc or aes-256-cbc)", cipherName)
	}
	if len(password) == 0 {
		return fmt.Errorf("encrypt with %s: empty password", cipherName)
	}
	salt := make([]byte, 8)
	if _, err := io.ReadFull(rand, salt); err != nil {
		return fmt.Errorf("encrypt: read salt: %w", err)
	}
	key, iv := bytesToKey(sha256.New, password, salt, kl, aes.BlockSize)
	block, err := aes.NewCipher(key)
	if err != nil {
		return fmt.Errorf("encrypt: %w", err)
	}
	pad := aes.BlockSize - len(plaintext)%aes.BlockSize
	buf := make([]byte, len(plaintext)+pad)
	copy(buf, plaintext)
	for i := len(plaintext); i < len(buf); i++ {
		buf[i] = byte(pad)
	}
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(buf, buf)
	out := make([]byte, 0, 16+len(buf))
	out = append(out, saltMagic...)
	out = append(out, salt...)
	out = append(out, buf...)
	if _, err := w.Write(out); err != nil {
		return fmt.Errorf("encrypt: write: %w", err)
	}
	return nil
}

// Decrypt decrypts an openssl enc file. It tries SHA-256 then MD5 key derivation and accepts a
// result only if its PKCS#7 padding is valid and it starts with the gzip magic (an apkovl is
// always gzip), so a wrong password never yields garbage. It reports which digest worked.
func Decrypt(data []byte, cipherName string, password []byte) ([]byte, Digest, error) {
	kl, ok := keyLen[cipherName]
	if !ok {
		return nil, "", fmt.Errorf("cipher %q is not supported (want aes-128-cbc, aes-192-cbc or aes-256-cbc)", cipherName)
	}
	if len(data) < 16 || string(data[:8]) != saltMagic {
		return nil, "", fmt.Errorf("not an openssl enc file: missing %q header", saltMagic)
	}
	salt, ct := data[8:16], data[16:]
	if len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return nil, "", fmt.Errorf("%w: ciphertext length %d is not a multiple of %d", ErrBadPassword, len(ct), aes.BlockSize)
	}
	for _, d := range []Digest{DigestSHA256, DigestMD5} {
		key, iv := bytesToKey(digestFunc(d), password, salt, kl, aes.BlockSize)
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, "", fmt.Errorf("decrypt: %w", err)
		}
		pt := make([]byte, len(ct))
		cipher.NewCBCDecrypter(block, iv).CryptBlocks(pt, ct)
		pt, ok := unpad(pt)
		if ok && len(pt) >= 2 && pt[0] == 0x1f && pt[1] == 0x8b {
			return pt, d, nil
		}
	}
	return nil, "", fmt.Errorf("%w (tried sha256 and md5 key derivation: bad padding or not gzip)", ErrBadPassword)
}

func unpad(b []byte) ([]byte, bool) {
	if len(b) == 0 {
		return nil, false
	}
	n := int(b[len(b)-1])
	if n == 0 || n > aes.BlockSize || n > len(b) {
		return nil, false
	}
	if !bytes.Equal(b[len(b)-n:], bytes.Repeat([]byte{byte(n)}, n)) {
		return nil, false
	}
	return b[:len(b)-n], true
}
