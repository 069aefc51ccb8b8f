package sign

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ramboot/ramboot/internal/testdata"
)

// TestParsePublicKeyLikeX509 holds the own DER parsing to crypto/x509's answers for Alpine's
// real keys and for generated ones in both PEM forms.
func TestParsePublicKeyLikeX509(t *testing.T) {
	dir := testdata.Path(t, "alpine", "keys")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var pems [][]byte
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		pems = append(pems, b)
	}
	if len(pems) < 3 {
		t.Fatalf("only %d keys in %s", len(pems), dir)
	}
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	spki, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	pems = append(pems,
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}),
		pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.PublicKey)}))
	for i, p := range pems {
		got, err := ParsePublicKey(p)
		if err != nil {
			t.Errorf("ParsePublicKey(key %d) = %v, want a key", i, err)
			continue
		}
		blk, _ := pem.Decode(p)
		var want *rsa.PublicKey
		if blk.Type == "PUBLIC KEY" {
			w, err := x509.ParsePKIXPublicKey(blk.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			want = w.(*rsa.PublicKey)
		} else {
			want, _ = x509.ParsePKCS1PublicKey(blk.Bytes)
		}
		if !got.Equal(want) {
			t.Errorf("ParsePublicKey(key %d) = N %x… E %d, want N %x… E %d", i, got.N.Bytes()[:8], got.E, want.N.Bytes()[:8], want.E)
		}
	}
}

func TestParsePublicKeyRejects(t *testing.T) {
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	spki, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	edSPKI, _ := x509.MarshalPKIXPublicKey(edPub)
	pkcs1 := func(n *big.Int, e int) []byte {
		b, err := asn1.Marshal(struct {
			N *big.Int
			E int
		}{n, e})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	withParams := func(params asn1.RawValue) []byte {
		b, err := asn1.Marshal(struct {
			Algorithm struct {
				OID    asn1.ObjectIdentifier
				Params asn1.RawValue
			}
			Key asn1.BitString
		}{struct {
			OID    asn1.ObjectIdentifier
			Params asn1.RawValue
		}{oidRSA, params}, asn1.BitString{Bytes: x509.MarshalPKCS1PublicKey(&k.PublicKey), BitLength: 8 * len(x509.MarshalPKCS1PublicKey(&k.PublicKey))}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name, typ string
		der       []byte
		want      string
	}{
		{"ed25519", "PUBLIC KEY", edSPKI, "want RSA"},
		{"trailing data", "PUBLIC KEY", append(append([]byte(nil), spki...), 0), "trailing data"},
		{"truncated", "PUBLIC KEY", spki[:len(spki)-1], "parse public key"},
		{"integer parameters", "PUBLIC KEY", withParams(asn1.RawValue{Tag: asn1.TagInteger, Bytes: []byte{1}}), "parameters"},
		{"negative modulus", "RSA PUBLIC KEY", pkcs1(big.NewInt(-5), 65537), "modulus"},
		{"zero exponent", "RSA PUBLIC KEY", pkcs1(k.N, 0), "exponent"},
		{"pkcs1 trailing data", "RSA PUBLIC KEY", append(x509.MarshalPKCS1PublicKey(&k.PublicKey), 0), "trailing data"},
		{"certificate", "CERTIFICATE", spki, "want PUBLIC KEY"},
	} {
		_, err := ParsePublicKey(pem.EncodeToMemory(&pem.Block{Type: tc.typ, Bytes: tc.der}))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParsePublicKey(%s) = %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
	// NULL parameters (what every encoder writes) are fine.
	if _, err := ParsePublicKey(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: withParams(asn1.NullRawValue)})); err != nil {
		t.Errorf("ParsePublicKey(NULL parameters) = %v, want a key", err)
	}
}
