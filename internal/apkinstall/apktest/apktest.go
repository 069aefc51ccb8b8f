// Package apktest builds test fixtures from real Alpine packages: it splits and re-assembles apk
// v2 gzip members, rewrites control and data segments (keeping or deliberately breaking the hash
// chain), and signs indexes with throwaway keys. Only tests import it.
package apktest

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
)

// Record is the part of an APKINDEX record tests need.
type Record struct {
	Name, Version, Checksum string // Checksum is the C: value ("Q1...")
	Identity                []byte
}

// IndexRecords extracts P/V/C of every record of APKINDEX text.
func IndexRecords(t testing.TB, text []byte) map[string]Record {
	t.Helper()
	out := map[string]Record{}
	var r Record
	flush := func() {
		if r.Name != "" {
			out[r.Name] = r
		}
		r = Record{}
	}
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if l == "" {
			flush()
			continue
		}
		switch {
		case strings.HasPrefix(l, "P:"):
			r.Name = l[2:]
		case strings.HasPrefix(l, "V:"):
			r.Version = l[2:]
		case strings.HasPrefix(l, "C:Q1"):
			r.Checksum = l[2:]
			id, err := base64.StdEncoding.DecodeString(l[4:])
			if err != nil {
				t.Fatalf("bad C: %q: %v", l, err)
			}
			r.Identity = id
		}
	}
	flush()
	return out
}

// Q1 encodes a SHA-1 the way apk writes it.
func Q1(sum []byte) string { return "Q1" + base64.StdEncoding.EncodeToString(sum) }

// Members splits raw into its gzip members (compressed bytes).
func Members(t testing.TB, raw []byte) [][]byte {
	t.Helper()
	var out [][]byte
	off := 0
	for off < len(raw) {
		br := bytes.NewReader(raw[off:])
		zr, err := gzip.NewReader(br)
		if err != nil {
			t.Fatalf("gzip member at %d: %v", off, err)
		}
		zr.Multistream(false)
		if _, err := io.Copy(io.Discard, zr); err != nil {
			t.Fatalf("gzip member at %d: %v", off, err)
		}
		end := len(raw) - br.Len()
		out = append(out, raw[off:end])
		off = end
	}
	return out
}

// Inflate returns the content of one gzip member.
func Inflate(t testing.TB, m []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(m))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Gzip compresses b as one member.
func Gzip(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Entry is one tar entry with its content.
type Entry struct {
	Hdr  *tar.Header
	Data []byte
}

// ReadTar parses a (possibly cut) tar stream.
func ReadTar(t testing.TB, b []byte) []Entry {
	t.Helper()
	var out []Entry
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("tar: %v", err)
		}
		d, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, Entry{Hdr: h, Data: d})
	}
}

// WriteTar writes entries; cut omits the end-of-archive blocks (as abuild-tar --cut does).
func WriteTar(t testing.TB, ents []Entry, cut bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := *e.Hdr
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.Data))
		}
		h.Format = tar.FormatPAX
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("tar header %s: %v", h.Name, err)
		}
		if _, err := tw.Write(e.Data); err != nil {
			t.Fatal(err)
		}
	}
	if cut {
		tw.Flush()
	} else if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// FileSum sets the APK-TOOLS.checksum.SHA1 record of e from its content (or symlink target).
func FileSum(e *Entry) {
	var s [20]byte
	switch e.Hdr.Typeflag {
	case tar.TypeReg:
		s = sha1.Sum(e.Data)
	case tar.TypeSymlink:
		s = sha1.Sum([]byte(e.Hdr.Linkname))
	default:
		return
	}
	if e.Hdr.PAXRecords == nil {
		e.Hdr.PAXRecords = map[string]string{}
	}
	e.Hdr.PAXRecords["APK-TOOLS.checksum.SHA1"] = hex.EncodeToString(s[:])
}

// Rebuild re-assembles a package from real package raw with its data entries changed by edit.
// When fixChain is true the datahash and thus the identity are updated so the chain holds; the
// new identity is returned. Signature member is dropped (apk does not check it for repo installs).
func Rebuild(t testing.TB, raw []byte, editCtl func([]Entry) []Entry, editData func([]Entry) []Entry, fixChain bool) ([]byte, []byte) {
	t.Helper()
	ms := Members(t, raw)
	if len(ms) != 3 {
		t.Fatalf("package has %d gzip members, want 3", len(ms))
	}
	data := ms[2]
	if editData != nil {
		data = Gzip(t, WriteTar(t, editData(ReadTar(t, Inflate(t, ms[2]))), false))
	}
	ctl := ReadTar(t, Inflate(t, ms[1]))
	if fixChain {
		dh := sha256.Sum256(data)
		for i := range ctl {
			if ctl[i].Hdr.Name == ".PKGINFO" {
				var lines []string
				for _, l := range strings.Split(string(ctl[i].Data), "\n") {
					if strings.HasPrefix(l, "datahash = ") {
						l = "datahash = " + hex.EncodeToString(dh[:])
					}
					lines = append(lines, l)
				}
				ctl[i].Data = []byte(strings.Join(lines, "\n"))
			}
		}
	}
	if editCtl != nil {
		ctl = editCtl(ctl)
	}
	ctlM := ms[1]
	if fixChain || editCtl != nil {
		ctlM = Gzip(t, WriteTar(t, ctl, true))
	}
	id := sha1.Sum(ctlM)
	return append(append([]byte{}, ctlM...), data...), id[:]
}

// Key is a throwaway signing key.
type Key struct {
	Name string // key file name
	Priv *rsa.PrivateKey
}

// NewKey makes a 2048-bit key (1024 would be faster but Go refuses keys < 1024 bits by default).
func NewKey(t testing.TB, name string) *Key {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &Key{Name: name, Priv: k}
}

// WritePub writes the public key as dir/Name.
func (k *Key) WritePub(t testing.TB, dir string) {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&k.Priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, k.Name), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
}

// SignedIndex builds an APKINDEX.tar.gz holding text, signed (RSA, SHA-1) with k; k nil = unsigned.
func SignedIndex(t testing.TB, k *Key, text []byte) []byte {
	t.Helper()
	body := Gzip(t, WriteTar(t, []Entry{
		{Hdr: &tar.Header{Name: "DESCRIPTION", Mode: 0o644, Typeflag: tar.TypeReg}, Data: []byte("test")},
		{Hdr: &tar.Header{Name: "APKINDEX", Mode: 0o644, Typeflag: tar.TypeReg}, Data: text},
	}, false))
	if k == nil {
		return body
	}
	d := sha1.Sum(body)
	sig, err := rsa.SignPKCS1v15(rand.Reader, k.Priv, crypto.SHA1, d[:])
	if err != nil {
		t.Fatal(err)
	}
	sm := Gzip(t, WriteTar(t, []Entry{{Hdr: &tar.Header{Name: ".SIGN.RSA." + k.Name, Mode: 0o644, Typeflag: tar.TypeReg}, Data: sig}}, true))
	return append(sm, body...)
}

// ReplaceChecksum rewrites the C: line of package name in APKINDEX text.
func ReplaceChecksum(t testing.TB, text []byte, name string, id []byte) []byte {
	t.Helper()
	recs := IndexRecords(t, text)
	r, ok := recs[name]
	if !ok {
		t.Fatalf("package %s not in index", name)
	}
	return bytes.Replace(text, []byte("C:"+r.Checksum+"\n"), []byte("C:"+Q1(id)+"\n"), 1)
}

// Must fails the test on err.
func Must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(fmt.Errorf("unexpected: %w", err))
	}
}

// WithScript returns the control entries ctl plus an executable control file name (".pre-install",
// ".trigger", ...) holding script; its header is modelled on the first entry's.
func WithScript(ctl []Entry, name string, script []byte) []Entry {
	h := *ctl[0].Hdr
	h.Name = name
	h.Mode = 0o755
	return append(ctl, Entry{Hdr: &h, Data: script})
}
