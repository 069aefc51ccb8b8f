// Package pkgstream decodes an apk v2 package in one pass over its bytes while checking the whole
// trust chain: the control gzip member must hash (SHA-1) to the identity the signed index lists
// (C:), the data member must hash (SHA-256) to .PKGINFO's datahash, and every file's content (a
// symlink's target) must match its APK-TOOLS.checksum.SHA1 PAX record. Nothing is returned unless
// all of it holds, so a caller never writes a byte of an unverified package.
//
// The package is decoded into memory (compressed input plus inflated file contents); packages
// are small and this lets the installer inflate several packages in parallel while writing them
// strictly in install order, with no temporary archives.
package pkgstream

import (
	"archive/tar"
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ramboot/ramboot/internal/apkinstall/sign"
	"github.com/ramboot/ramboot/internal/shasum"
)

// Xattr is one extended attribute of a file (from a SCHILY.xattr.* PAX record).
type Xattr struct {
	Name  string
	Value []byte
}

// File is one entry of the data segment, as recorded in the tar header.
type File struct {
	Name         string // as in the archive, without a trailing slash
	Type         byte   // tar typeflag: tar.TypeReg, TypeDir, TypeSymlink, TypeLink, TypeChar, TypeBlock, TypeFifo
	Mode         uint32 // permission bits including setuid/setgid/sticky (07777)
	Uname, Gname string
	UID, GID     int
	ModTime      time.Time
	Linkname     string // symlink target, or hardlink target (archive name)
	Devmajor     uint32
	Devminor     uint32
	Xattrs       []Xattr // sorted by name
	Checksum     []byte  // SHA-1 from APK-TOOLS.checksum.SHA1; nil when the archive has none
	Data         []byte
}

// Script is one control script (.pre-install, .post-install, .trigger, ...), type without the dot.
type Script struct {
	Type string
	Data []byte
}

// Info holds the .PKGINFO fields the installer needs, plus every line verbatim.
type Info struct {
	Name, Version, Arch, Origin string
	DataHash                    string   // lowercase hex SHA-256 of the data member
	Triggers                    []string // directory globs
	Replaces                    []string
	ReplacesPriority            int
	BuildDate                   int64
	Fields                      [][2]string // key, value in file order
}

// Package is a fully verified, decoded package.
type Package struct {
	Identity   []byte // SHA-1 of the control member (= index C:)
	Signatures []sign.Signature
	Info       Info
	Scripts    []Script
	Files      []File
	DataSize   int64 // sum of file contents
}

// Error is a verification or format failure, naming the package.
type Error struct {
	Package string // name given to Decode (usually name-version or the file name)
	Err     error
}

func (e *Error) Error() string { return e.Package + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Sentinel causes, testable with errors.Is.
var (
	ErrIdentity  = errors.New("control stream does not match the index checksum (C:)")
	ErrDataHash  = errors.New("data stream does not match datahash")
	ErrFileHash  = errors.New("file content does not match its checksum")
	ErrTruncated = errors.New("truncated package")
	ErrFormat    = errors.New("malformed package")
)

// PAX record names abuild writes.
const (
	paxChecksumSHA1 = "APK-TOOLS.checksum.SHA1"
	paxXattrPrefix  = "SCHILY.xattr."
)

// Decode verifies and decodes the package in raw. identity is the expected SHA-1 of the control
// member (from the signed index); nil skips that check (only for --allow-untrusted local files).
func Decode(name string, raw []byte, identity []byte) (*Package, error) {
	return DecodeWith(name, raw, identity, Options{})
}

// Allocator provides the memory a package's data segment is inflated into (file contents are
// slices of it), so an installer can recycle it across packages. Alloc returns a slice of
// length n.
type Allocator interface {
	Alloc(n int) []byte
}

// Options are an installer's hooks into DecodeWith; the zero value is Decode's behaviour.
type Options struct {
	// Alloc provides the data segment's memory (nil = the Go heap); the returned files alias it.
	Alloc Allocator
	// Yield, if set, is called before each deflate block of the data segment (tens of
	// kilobytes of output, under 0.1 ms) and between chunks of the data segment's and large
	// files' hashes (shasum.Chunk): the points where a long decode can give its CPU away to
	// more urgent work.
	Yield func()
}

// DecodeWith is Decode with the hooks in o.
func DecodeWith(name string, raw []byte, identity []byte, o Options) (*Package, error) {
	p, err := decode(raw, identity, o)
	if err != nil {
		return nil, &Error{Package: name, Err: err}
	}
	return p, nil
}

// ReadSignatures reads the leading signature member of an apk v2 stream (package or index). If
// the first member holds a file other than a .SIGN.* one it is not a signature member: no
// signatures and end 0.
func ReadSignatures(raw []byte) (sigs []sign.Signature, end int, err error) {
	return readSignatures(raw, make([]byte, 4096))
}

// readSignatures is ReadSignatures inflating into buf first (a signature member is about 1 KB).
func readSignatures(raw, buf []byte) ([]sign.Signature, int, error) {
	for {
		n, end, err := gunzipInto(buf, raw)
		// The entries inflated so far can already tell that this is not a signature member: an
		// unsigned index starts with its body, which can be megabytes.
		sigs, notSig, terr := walkSignatures(buf[:n])
		switch {
		case notSig:
			return nil, 0, nil
		case terr != nil && !errors.Is(terr, ErrTruncated):
			return nil, 0, terr
		case err == errShort && len(buf) < maxSigMember:
			buf = make([]byte, min(2*len(buf), maxSigMember))
			continue
		case err == errShort:
			return nil, 0, fmt.Errorf("%w: signature member inflates to more than %d bytes", ErrFormat, maxSigMember)
		case err != nil:
			return nil, 0, err
		case terr != nil:
			return nil, 0, terr
		}
		return sigs, end, nil
	}
}

// walkSignatures reads the signature files of an inflated signature member (or of its start).
// notSig reports a file that is not a signature.
func walkSignatures(tarData []byte) (sigs []sign.Signature, notSig bool, err error) {
	tr := newTarReader(tarData)
	for {
		h, err := tr.next()
		if h != nil && !bytes.HasPrefix(h.Name, []byte(sign.SigFilePrefix)) {
			return nil, true, nil
		}
		// apk 3 ignores signature files over 64 KiB; an RSA signature is a few hundred bytes.
		if h != nil && h.Size > 64<<10 {
			return nil, false, fmt.Errorf("%w: signature %s is %d bytes", ErrFormat, h.Name, h.Size)
		}
		if err == io.EOF {
			return sigs, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		sigs = append(sigs, sign.Signature{Name: string(h.Name), Value: bytes.Clone(h.Data)})
	}
}

func decode(raw []byte, identity []byte, o Options) (*Package, error) {
	if len(raw) == 0 {
		return nil, fmt.Errorf("%w: empty file", ErrTruncated)
	}
	// One buffer for the signature member, then the control member: together they inflate to
	// at most 13 KB in the Alpine repositories.
	scratch := make([]byte, 16<<10)
	sigs, ctlStart, err := readSignatures(raw, scratch)
	if err != nil {
		return nil, fmt.Errorf("signature segment: %w", err)
	}
	p := &Package{Signatures: sigs}
	ctl, ctlLen, err := gunzip(raw[ctlStart:], scratch, maxControlMember)
	if err != nil {
		return nil, fmt.Errorf("control segment: %w", err)
	}
	pkginfo, err := p.readControl(ctl)
	if err != nil {
		return nil, fmt.Errorf("control segment: %w", err)
	}
	ctlEnd := ctlStart + ctlLen
	id := shasum.SHA1(raw[ctlStart:ctlEnd])
	p.Identity = id[:]
	if identity != nil && !bytes.Equal(id[:], identity) {
		return nil, ErrIdentity
	}
	if pkginfo == nil {
		return nil, fmt.Errorf("%w: no .PKGINFO in the control segment", ErrFormat)
	}
	if p.Info, err = ParseInfo(pkginfo); err != nil {
		return nil, err
	}
	if ctlEnd == len(raw) {
		if p.Info.DataHash != "" {
			return nil, fmt.Errorf("%w: no data segment", ErrTruncated)
		}
		return p, nil
	}
	if p.Info.DataHash == "" {
		// Legacy packages without datahash are only covered by a package signature apk does not
		// check for repository installs; refusing them keeps the chain unbroken.
		return nil, fmt.Errorf("%w: .PKGINFO has no datahash", ErrFormat)
	}
	want, err := hex.DecodeString(p.Info.DataHash)
	if err != nil || len(want) != sha256.Size {
		return nil, fmt.Errorf("%w: bad datahash %q", ErrFormat, p.Info.DataHash)
	}
	got := shasum.SHA256Yield(raw[ctlEnd:], o.Yield)
	if !bytes.Equal(got[:], want) {
		// Distinguish a cut-off file (more useful to the user) from tampered content.
		if memberCut(raw[ctlEnd:]) {
			return nil, fmt.Errorf("data segment: %w: data member cut short", ErrTruncated)
		}
		return nil, ErrDataHash
	}
	// The data member is authenticated now: inflate it in one go into a buffer of the size
	// its trailer announces, and hand out file contents as slices of that buffer.
	tarData, err := inflateMember(raw[ctlEnd:], o)
	if err != nil {
		return nil, fmt.Errorf("data segment: %w", err)
	}
	if err := p.readData(tarData, o.Yield); err != nil {
		return nil, fmt.Errorf("data segment: %w", err)
	}
	return p, nil
}

// readControl collects the scripts of an inflated control segment and returns .PKGINFO (a
// slice of ctl; scripts are copied so that the buffer can go).
func (p *Package) readControl(ctl []byte) (pkginfo []byte, err error) {
	tr := newTarReader(ctl)
	for {
		h, err := tr.next()
		if err == io.EOF {
			return pkginfo, nil
		}
		if err != nil {
			return nil, err
		}
		if h.Typeflag != typeReg {
			continue
		}
		// Scripts are capped like apk 3 does (APK_MAX_SCRIPT_SIZE); .PKGINFO likewise.
		if h.Size > 256<<10 {
			return nil, fmt.Errorf("%w: control file %s is %d bytes", ErrFormat, h.Name, h.Size)
		}
		switch {
		case string(h.Name) == ".PKGINFO":
			pkginfo = h.Data
		case bytes.HasPrefix(h.Name, []byte(".SIGN.")):
			return nil, fmt.Errorf("%w: signature file %s inside the control segment", ErrFormat, h.Name)
		case isScript(h.Name):
			p.Scripts = append(p.Scripts, Script{Type: string(h.Name[1:]), Data: bytes.Clone(h.Data)})
		}
	}
}

// readData converts the entries of the inflated data segment into p.Files.
func (p *Package) readData(tarData []byte, yield func()) error {
	fb := fileBuilder{yield: yield}
	tr := newTarReader(tarData)
	for {
		h, err := tr.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		// apk 2.x treats every top-level dotfile of the tar stream as package metadata and
		// never installs it (meta packages carry a ".dummy" file, for instance).
		if len(h.Name) > 0 && h.Name[0] == '.' && bytes.IndexByte(bytes.TrimSuffix(h.Name, []byte("/")), '/') < 0 {
			continue
		}
		f, err := fb.file(h)
		if err != nil {
			return err
		}
		p.DataSize += int64(len(f.Data))
		p.Files = append(p.Files, f)
	}
}

// maxRatio bounds the size a deflate stream can announce (deflate cannot exceed ~1032:1).
const maxRatio = 1032

// inflateMember decodes the single gzip member m (header, deflate data, CRC32, ISIZE) into a
// buffer from o.Alloc. The member must end exactly at the end of m: apk 3 rejects further
// members. The CRC32 is not recomputed: the SHA-256 datahash already covers every byte.
func inflateMember(m []byte, o Options) ([]byte, error) {
	hdr, err := gzipHeaderLen(m)
	if err != nil {
		return nil, fmt.Errorf("%w: gzip header: %v", ErrFormat, err)
	}
	if len(m) < hdr+8 {
		return nil, fmt.Errorf("%w: gzip member cut short", ErrTruncated)
	}
	size := int64(binary.LittleEndian.Uint32(m[len(m)-4:]))
	if size > int64(len(m))*maxRatio || size > 1<<31 {
		return nil, fmt.Errorf("%w: gzip member announces %d bytes from %d", ErrFormat, size, len(m))
	}
	var out []byte
	if o.Alloc != nil {
		out = o.Alloc.Alloc(int(size))
	} else {
		out = make([]byte, size)
	}
	body := m[hdr : len(m)-8]
	n, err := inflateYield(out, body, false, o.Yield)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	if n != len(body) {
		return nil, fmt.Errorf("%w: %d bytes after the data segment's deflate stream", ErrFormat, len(body)-n)
	}
	return out, nil
}

func isScript(name []byte) bool {
	switch string(name) {
	case ".pre-install", ".post-install", ".pre-deinstall", ".post-deinstall",
		".pre-upgrade", ".post-upgrade", ".trigger":
		return true
	}
	return false
}

// fileBuilder converts data entries, sharing what it can between them: owner names repeat
// (mostly "root"), and checksums are carved out of one allocation.
type fileBuilder struct {
	uname, gname string
	sums         []byte
	yield        func() // Options.Yield, between chunks of a large file's checksum
}

// intern returns b as a string, reusing *last when equal.
func intern(last *string, b []byte) string {
	if string(b) != *last {
		*last = string(b)
	}
	return *last
}

// file converts a data entry; its content stays a slice of the segment.
func (fb *fileBuilder) file(h *tarHeader) (File, error) {
	switch h.Typeflag {
	case typeReg, typeDir, typeSymlink, typeLink, typeChar, typeBlock, typeFifo:
	default:
		return File{}, fmt.Errorf("%w: %s: unsupported tar entry type %q", ErrFormat, h.Name, h.Typeflag)
	}
	f := File{
		Name:     string(bytes.TrimSuffix(h.Name, []byte("/"))),
		Type:     h.Typeflag,
		Mode:     uint32(h.Mode) & 07777,
		Uname:    intern(&fb.uname, h.Uname),
		Gname:    intern(&fb.gname, h.Gname),
		UID:      h.UID,
		GID:      h.GID,
		ModTime:  h.ModTime,
		Linkname: string(h.Linkname),
		Devmajor: uint32(h.Devmajor),
		Devminor: uint32(h.Devminor),
	}
	var sum []byte
	var hasSum bool
	eachPAX(h.PAX, func(k, v []byte) {
		if string(k) == paxChecksumSHA1 {
			sum, hasSum = v, true
		} else if name, ok := bytes.CutPrefix(k, []byte(paxXattrPrefix)); ok {
			f.Xattrs = setXattr(f.Xattrs, name, v)
		}
	})
	if len(f.Xattrs) > 1 {
		slices.SortFunc(f.Xattrs, func(a, b Xattr) int { return strings.Compare(a.Name, b.Name) })
	}
	if hasSum {
		if len(fb.sums)+sha1.Size > cap(fb.sums) {
			fb.sums = make([]byte, 0, min(max(2*cap(fb.sums), 16*sha1.Size), 1024*sha1.Size))
		}
		dst := fb.sums[len(fb.sums) : len(fb.sums)+sha1.Size : len(fb.sums)+sha1.Size]
		if n, err := hex.Decode(dst, sum); err != nil || len(sum) != 2*sha1.Size || n != sha1.Size {
			return f, fmt.Errorf("%w: %s: bad %s %q", ErrFormat, h.Name, paxChecksumSHA1, sum)
		}
		fb.sums = fb.sums[:len(fb.sums)+sha1.Size]
		f.Checksum = dst
	}
	if f.Type == typeReg && h.Size > 0 {
		f.Data = h.Data
	}
	if f.Checksum != nil {
		if got, ok := f.sum(fb.yield); ok && !bytes.Equal(got[:], f.Checksum) {
			return f, fmt.Errorf("%s: %w", f.Name, ErrFileHash)
		}
	}
	return f, nil
}

// setXattr sets name to a copy of v (a repeated record's last value wins, as in a map).
func setXattr(xs []Xattr, name, v []byte) []Xattr {
	val := append([]byte{}, v...)
	for i := range xs {
		if xs[i].Name == string(name) {
			xs[i].Value = val
			return xs
		}
	}
	return append(xs, Xattr{Name: string(name), Value: val})
}

// Sum computes apk's checksum of an entry: the SHA-1 of a regular file's content or of a
// symlink's target; nil for other types.
func (f *File) Sum() []byte {
	s, ok := f.sum(nil)
	if !ok {
		return nil
	}
	return s[:]
}

// sum is Sum without the allocation (the decoder checks every file), calling yield between
// chunks of a large file (shasum.SHA1Yield).
func (f *File) sum(yield func()) (s [sha1.Size]byte, ok bool) {
	switch f.Type {
	case tar.TypeReg:
		return shasum.SHA1Yield(f.Data, yield), true
	case tar.TypeSymlink:
		return shasum.SHA1([]byte(f.Linkname)), true
	}
	return s, false
}

// ParseInfo parses .PKGINFO ("key = value" lines, # comments; lines end in "\n" or "\r\n").
func ParseInfo(data []byte) (Info, error) {
	var in Info
	// One string for the whole file, the fields slices of it (a bufio.Scanner cost a 64 KiB
	// buffer per package).
	for text := string(data); text != ""; {
		var line string
		line, text, _ = strings.Cut(text, "\n")
		line = strings.TrimSuffix(line, "\r")
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, " = ")
		if !ok {
			return in, fmt.Errorf("%w: .PKGINFO line %q", ErrFormat, line)
		}
		in.Fields = append(in.Fields, [2]string{k, v})
		switch k {
		case "pkgname":
			in.Name = v
		case "pkgver":
			in.Version = v
		case "arch":
			in.Arch = v
		case "origin":
			in.Origin = v
		case "datahash":
			in.DataHash = strings.ToLower(v)
		case "triggers":
			in.Triggers = append(in.Triggers, strings.Fields(v)...)
		case "replaces":
			in.Replaces = append(in.Replaces, strings.Fields(v)...)
		case "replaces_priority":
			n, err := strconv.Atoi(v)
			if err != nil {
				return in, fmt.Errorf("%w: .PKGINFO replaces_priority %q", ErrFormat, v)
			}
			in.ReplacesPriority = n
		case "builddate":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return in, fmt.Errorf("%w: .PKGINFO builddate %q", ErrFormat, v)
			}
			in.BuildDate = n
		}
	}
	if in.Name == "" || in.Version == "" {
		return in, fmt.Errorf("%w: .PKGINFO lacks pkgname or pkgver", ErrFormat)
	}
	return in, nil
}
