// Package sign verifies the RSA signatures apk v2 uses on indexes and packages (signer produces
// them): PKCS#1 v1.5 over the raw bytes of a gzip member, with the key named by
// the signature file name (.SIGN.RSA.<keyname>, .SIGN.RSA256.<keyname>, .SIGN.RSA512.<keyname>).
package sign

import (
	"crypto"
	"crypto/rsa"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strings"

	// Register the digests a signature may name.
	_ "crypto/sha1"
	_ "crypto/sha256"
	_ "crypto/sha512"
)

// ErrUntrusted means no key in the key ring could check a signature (unknown key name, or no
// signature at all). Callers with --allow-untrusted treat it as a warning.
var ErrUntrusted = errors.New("UNTRUSTED signature")

// SigFilePrefix starts the name of every signature file inside a signature tar segment.
const SigFilePrefix = ".SIGN."

// ParseSignatureName splits ".SIGN.<ALG>.<keyname>" into the digest the algorithm signs and the
// key file name. ok is false for names that are not RSA signatures apk understands (DSA is legacy
// and unsupported).
func ParseSignatureName(name string) (h crypto.Hash, key string, ok bool) {
	rest, found := strings.CutPrefix(name, SigFilePrefix)
	if !found {
		return 0, "", false
	}
	alg, key, found := strings.Cut(rest, ".")
	if !found || key == "" || strings.ContainsAny(key, "/\x00") {
		return 0, "", false
	}
	switch alg {
	case "RSA":
		return crypto.SHA1, key, true
	case "RSA256":
		return crypto.SHA256, key, true
	case "RSA512":
		return crypto.SHA512, key, true
	}
	return 0, "", false
}

// KeyRing holds trusted public keys by file name, as apk looks them up in its keys directory.
type KeyRing struct {
	keys map[string]*rsa.PublicKey
}

// LoadKeyRing reads every PEM public key in dir. A missing directory gives an empty ring (every
// signature is then untrusted); an unreadable or malformed key file is an error naming it.
func LoadKeyRing(dir string) (*KeyRing, error) {
	kr := &KeyRing{keys: map[string]*rsa.PublicKey{}}
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return kr, nil
	}
	if err != nil {
		return nil, fmt.Errorf("keys directory %s: %w", dir, err)
	}
	for _, e := range ents {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", p, err)
		}
		pub, err := ParsePublicKey(data)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", p, err)
		}
		kr.keys[e.Name()] = pub
	}
	return kr, nil
}

// ParsePublicKey decodes a PEM "PUBLIC KEY" (PKIX) or "RSA PUBLIC KEY" (PKCS#1) block.
func ParsePublicKey(data []byte) (*rsa.PublicKey, error) {
	blk, _ := pem.Decode(data)
	if blk == nil {
		return nil, errors.New("no PEM block")
	}
	switch blk.Type {
	case "PUBLIC KEY":
		return parsePKIX(blk.Bytes)
	case "RSA PUBLIC KEY":
		return parsePKCS1(blk.Bytes)
	}
	return nil, fmt.Errorf("PEM block %q, want PUBLIC KEY", blk.Type)
}

// Add trusts pub under the file name name.
func (kr *KeyRing) Add(name string, pub *rsa.PublicKey) { kr.keys[name] = pub }

// Names lists the trusted key names, sorted.
func (kr *KeyRing) Names() []string {
	n := make([]string, 0, len(kr.keys))
	for k := range kr.keys {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// Has reports whether a key of that file name is trusted.
func (kr *KeyRing) Has(name string) bool { return kr != nil && kr.keys[name] != nil }

// Signature is one .SIGN.* file of a signature segment.
type Signature struct {
	Name  string // full file name, .SIGN.RSA.<key>
	Value []byte
}

// VerifyData checks that one of sigs (apk uses the first whose key it has) signs data. It returns
// the name of the key that verified, ErrUntrusted when no signature names a trusted key, or an
// error describing a signature that does not match.
func (kr *KeyRing) VerifyData(sigs []Signature, data []byte) (string, error) {
	for _, s := range sigs {
		h, key, ok := ParseSignatureName(s.Name)
		if !ok || !kr.Has(key) {
			continue
		}
		d := h.New()
		d.Write(data)
		if err := rsa.VerifyPKCS1v15(kr.keys[key], h, d.Sum(nil), s.Value); err != nil {
			return "", fmt.Errorf("BAD signature %s: %w", s.Name, err)
		}
		return key, nil
	}
	if len(sigs) == 0 {
		return "", fmt.Errorf("no signature: %w", ErrUntrusted)
	}
	names := make([]string, len(sigs))
	for i, s := range sigs {
		names[i] = strings.TrimPrefix(s.Name, SigFilePrefix)
	}
	return "", fmt.Errorf("no trusted key for %s: %w", strings.Join(names, ", "), ErrUntrusted)
}

// The two DER forms of an RSA public key are parsed here rather than with crypto/x509: that
// package (with net, the elliptic curves and ed25519 behind it) would be linked into PID 1 and
// initialised at every boot only for these few lines. The checks are crypto/x509's.

// oidRSA is rsaEncryption (RFC 8017 A.1).
var oidRSA = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}

// parsePKIX decodes a SubjectPublicKeyInfo (RFC 5280 4.1) holding an RSA key.
func parsePKIX(der []byte) (*rsa.PublicKey, error) {
	var spki struct {
		Algorithm struct {
			OID    asn1.ObjectIdentifier
			Params asn1.RawValue `asn1:"optional"`
		}
		Key asn1.BitString
	}
	if rest, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, fmt.Errorf("parse public key: %w", err)
	} else if len(rest) != 0 {
		return nil, errors.New("parse public key: trailing data after SubjectPublicKeyInfo")
	}
	if !spki.Algorithm.OID.Equal(oidRSA) {
		return nil, fmt.Errorf("public key algorithm %v, want RSA (%v)", spki.Algorithm.OID, oidRSA)
	}
	// RFC 3279 2.3.1: the parameters are NULL (some encoders omit them; crypto/x509 accepts both).
	if p := spki.Algorithm.Params; len(p.FullBytes) != 0 && !(p.Tag == asn1.TagNull && len(p.Bytes) == 0) {
		return nil, errors.New("parse public key: RSA key with parameters other than NULL")
	}
	if spki.Key.BitLength%8 != 0 {
		return nil, errors.New("parse public key: key bit string is not whole bytes")
	}
	return parsePKCS1(spki.Key.Bytes)
}

// parsePKCS1 decodes an RSAPublicKey (RFC 8017 A.1.1).
func parsePKCS1(der []byte) (*rsa.PublicKey, error) {
	var k struct {
		N *big.Int
		E int
	}
	if rest, err := asn1.Unmarshal(der, &k); err != nil {
		return nil, fmt.Errorf("parse RSA public key: %w", err)
	} else if len(rest) != 0 {
		return nil, errors.New("parse RSA public key: trailing data")
	}
	if k.N.Sign() <= 0 {
		return nil, errors.New("parse RSA public key: modulus is not a positive number")
	}
	if k.E <= 0 || k.E > 1<<31-1 {
		return nil, errors.New("parse RSA public key: public exponent out of range")
	}
	return &rsa.PublicKey{N: k.N, E: k.E}, nil
}
