// Package index loads a repository index (APKINDEX.tar.gz): it verifies the signature over the
// index's gzip member against the trusted keys and returns the APKINDEX text. Parsing the text
// into packages is internal/apkinstall/pkg's job.
package index

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/gzip"
	"github.com/ramboot/ramboot/internal/apkinstall/pkgstream"
	"github.com/ramboot/ramboot/internal/apkinstall/sign"
)

// Index is a loaded, verified index.
type Index struct {
	Path        string
	Description string
	Text        []byte // the APKINDEX file
	SignedBy    string // key file name that verified it; "" when untrusted
}

// maxIndex bounds what we inflate from one index (real Alpine main is ~2 MB of text).
const maxIndex = 256 << 20

// Load reads and verifies the index file at path. An index no trusted key verifies is refused
// with an error wrapping sign.ErrUntrusted, unless allowUntrusted; a signature that names a
// trusted key but does not match is always refused.
func Load(path string, keys *sign.KeyRing, allowUntrusted bool) (*Index, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("index %s: %w", path, err)
	}
	ix, err := Parse(raw, keys, allowUntrusted)
	if err != nil {
		return nil, fmt.Errorf("index %s: %w", path, err)
	}
	ix.Path = path
	return ix, nil
}

// Parse verifies and decodes an index held in memory.
func Parse(raw []byte, keys *sign.KeyRing, allowUntrusted bool) (*Index, error) {
	sigs, start, err := pkgstream.ReadSignatures(raw)
	if err != nil {
		return nil, fmt.Errorf("signature segment: %w", err)
	}
	ix := &Index{}
	if start >= len(raw) {
		return nil, errors.New("no index segment after the signature")
	}
	// The signature covers the raw bytes of the rest of the file (one gzip member).
	key, verr := keys.VerifyData(sigs, raw[start:])
	switch {
	case verr == nil:
		ix.SignedBy = key
	case errors.Is(verr, sign.ErrUntrusted) && allowUntrusted:
	default:
		return nil, verr
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw[start:]))
	if err != nil {
		return nil, fmt.Errorf("index segment: %w", err)
	}
	tr := tar.NewReader(io.LimitReader(zr, maxIndex))
	found := false
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("index segment: %w", err)
		}
		switch h.Name {
		case "APKINDEX":
			if ix.Text, err = io.ReadAll(tr); err != nil {
				return nil, fmt.Errorf("index segment: APKINDEX: %w", err)
			}
			found = true
		case "DESCRIPTION":
			d, err := io.ReadAll(io.LimitReader(tr, 4096))
			if err != nil {
				return nil, fmt.Errorf("index segment: DESCRIPTION: %w", err)
			}
			ix.Description = string(bytes.TrimSpace(d))
		}
	}
	if _, err := io.Copy(io.Discard, zr); err != nil {
		return nil, fmt.Errorf("index segment: %w", err)
	}
	if !found {
		return nil, errors.New("no APKINDEX file in the index")
	}
	return ix, nil
}
