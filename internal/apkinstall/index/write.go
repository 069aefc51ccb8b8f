package index

import (
	"archive/tar"
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/ramboot/ramboot/internal/apkinstall/pkg"
	"github.com/ramboot/ramboot/internal/apkinstall/pkgstream"
	"github.com/ramboot/ramboot/internal/apkinstall/sign"
)

// maxPkgInfo bounds the control segment we inflate while indexing (real ones are a few KiB).
const maxControl = 16 << 20

// RecordFromAPK reads an apk v2 package file and returns its index record, as `apk index` does:
// the .PKGINFO fields, C: = Q1 SHA-1 of the raw control gzip member, S: = the file size.
func RecordFromAPK(path string) (*pkg.Package, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("package: %w", err)
	}
	p, err := recordFromBytes(raw)
	if err != nil {
		return nil, fmt.Errorf("package %s: %w", path, err)
	}
	return p, nil
}

func recordFromBytes(raw []byte) (*pkg.Package, error) {
	_, start, err := pkgstream.ReadSignatures(raw)
	if err != nil {
		return nil, fmt.Errorf("signature segment: %w", err)
	}
	br := bytes.NewReader(raw[start:])
	zr, err := gzip.NewReader(br)
	if err != nil {
		return nil, fmt.Errorf("control segment: %w", err)
	}
	zr.Multistream(false)
	tr := tar.NewReader(io.LimitReader(zr, maxControl))
	var info []byte
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("control segment: %w", err)
		}
		if h.Name == ".PKGINFO" {
			if info, err = io.ReadAll(tr); err != nil {
				return nil, fmt.Errorf("control segment: .PKGINFO: %w", err)
			}
		}
	}
	// Drain to the member trailer so the gzip CRC is checked and the boundary is exact.
	if _, err := io.Copy(io.Discard, zr); err != nil {
		return nil, fmt.Errorf("control segment: %w", err)
	}
	end := start + (len(raw) - start - br.Len())
	if info == nil {
		return nil, errors.New("no .PKGINFO in the control segment (not an apk v2 package?)")
	}
	p, err := packageFromInfo(info)
	if err != nil {
		return nil, err
	}
	sum := sha1.Sum(raw[start:end])
	p.Checksum = "Q1" + base64.StdEncoding.EncodeToString(sum[:])
	p.Size = int64(len(raw))
	return p, nil
}

// packageFromInfo maps .PKGINFO keys to index fields (apk-format.md §1.4).
func packageFromInfo(data []byte) (*pkg.Package, error) {
	p := &pkg.Package{Repo: -1}
	deps := func(dst *[]pkg.Dependency, v string) error {
		d, err := pkg.ParseDependencies(v)
		if err != nil {
			return err
		}
		*dst = append(*dst, d...)
		return nil
	}
	num := func(k, v string) (int64, error) {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf(".PKGINFO %s = %q: not a number", k, v)
		}
		return n, nil
	}
	for _, line := range strings.Split(string(data), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, " = ")
		if !ok {
			// apk skips such lines (read_info_line): real packages have multi-line license
			// values whose continuation lines start with a tab.
			continue
		}
		var err error
		switch k {
		case "pkgname":
			p.Name = v
		case "pkgver":
			p.Version = v
		case "pkgdesc":
			p.Description = v
		case "url":
			p.URL = v
		case "license":
			p.License = v
		case "arch":
			p.Arch = v
		case "origin":
			p.Origin = v
		case "maintainer":
			p.Maintainer = v
		case "commit":
			p.Commit = v
		case "size":
			p.InstalledSize, err = num(k, v)
		case "builddate":
			p.BuildTime, err = num(k, v)
		case "provider_priority":
			var n int64
			n, err = num(k, v)
			p.ProviderPriority = int(n)
		case "depend":
			err = deps(&p.Depends, v)
		case "provides":
			err = deps(&p.Provides, v)
		case "install_if":
			err = deps(&p.InstallIf, v)
		}
		if err != nil {
			return nil, fmt.Errorf(".PKGINFO %s: %w", k, err)
		}
	}
	if p.Name == "" || p.Version == "" {
		return nil, errors.New(".PKGINFO lacks pkgname or pkgver")
	}
	return p, nil
}

// Signer signs an index (internal/apkinstall/signer.Signer): it returns the signature gzip
// member to put in front of member.
type Signer interface {
	SignatureMember(member []byte, mtime time.Time) ([]byte, error)
}

// WriteOptions control Write.
type WriteOptions struct {
	Description string // DESCRIPTION file ("" writes an empty one, as apk index does)
	Signer      Signer // nil leaves the index unsigned
	// RewriteArch replaces A: of noarch packages (apk index --rewrite-arch, as abuild does).
	RewriteArch string
	ModTime     time.Time // tar entry mtimes; zero = Unix epoch (reproducible)
}

// Write writes APKINDEX.tar.gz for pkgs to w: an optional signature member followed by one gzip
// member holding the tar {DESCRIPTION, APKINDEX} (with end blocks). Records are sorted by name
// and version, so equal input gives equal bytes.
func Write(w io.Writer, pkgs []*pkg.Package, opts WriteOptions) error {
	sorted := append([]*pkg.Package(nil), pkgs...)
	sort.SliceStable(sorted, func(i, j int) bool {
		if sorted[i].Name != sorted[j].Name {
			return sorted[i].Name < sorted[j].Name
		}
		return sorted[i].Version < sorted[j].Version
	})
	var text bytes.Buffer
	for _, p := range sorted {
		q := *p
		if opts.RewriteArch != "" && q.Arch == "noarch" {
			q.Arch = opts.RewriteArch
		}
		if err := pkg.WriteIndexRecord(&text, &q); err != nil {
			return err
		}
		text.WriteByte('\n')
	}
	mtime := opts.ModTime
	if mtime.IsZero() {
		mtime = time.Unix(0, 0)
	}
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	for _, f := range []struct {
		name string
		data []byte
	}{{"DESCRIPTION", []byte(opts.Description)}, {"APKINDEX", text.Bytes()}} {
		hdr := &tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), ModTime: mtime,
			Typeflag: tar.TypeReg, Uname: "root", Gname: "root", Format: tar.FormatUSTAR}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("index tar: %w", err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return fmt.Errorf("index tar: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("index tar: %w", err)
	}
	member, err := sign.GzipMember(tb.Bytes())
	if err != nil {
		return fmt.Errorf("index: %w", err)
	}
	if opts.Signer != nil {
		sig, err := opts.Signer.SignatureMember(member, mtime)
		if err != nil {
			return fmt.Errorf("index: %w", err)
		}
		if _, err := w.Write(sig); err != nil {
			return fmt.Errorf("index: %w", err)
		}
	}
	if _, err := w.Write(member); err != nil {
		return fmt.Errorf("index: %w", err)
	}
	return nil
}

// WriteFile indexes the package files apks into the file out (written via a temporary file and
// renamed, so a failure never leaves a partial index). progress, if not nil, receives one line per
// package.
func WriteFile(out string, apks []string, opts WriteOptions, progress io.Writer) ([]*pkg.Package, error) {
	var pkgs []*pkg.Package
	seen := map[string]string{}
	for i, a := range apks {
		p, err := RecordFromAPK(a)
		if err != nil {
			return nil, err
		}
		id := p.Name + "-" + p.Version
		if prev, dup := seen[id]; dup {
			return nil, fmt.Errorf("package %s: %s is also in %s", a, id, prev)
		}
		seen[id] = a
		if progress != nil {
			fmt.Fprintf(progress, "(%d/%d) %s\n", i+1, len(apks), id)
		}
		pkgs = append(pkgs, p)
	}
	var buf bytes.Buffer
	if err := Write(&buf, pkgs, opts); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp*")
	if err != nil {
		return nil, fmt.Errorf("index %s: %w", out, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("index %s: %w", out, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("index %s: %w", out, err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("index %s: %w", out, err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return nil, fmt.Errorf("index %s: %w", out, err)
	}
	return pkgs, nil
}
