package pkgstream_test

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ramboot/ramboot/internal/apkinstall/apktest"
	"github.com/ramboot/ramboot/internal/apkinstall/index"
	"github.com/ramboot/ramboot/internal/apkinstall/pkgstream"
	"github.com/ramboot/ramboot/internal/apkinstall/sign"
	"github.com/ramboot/ramboot/internal/testdata"
)

func realRepo(t testing.TB) (string, map[string]apktest.Record) {
	t.Helper()
	dir := testdata.Path(t, "alpine", "v3.19", "x86_64")
	keys, err := sign.LoadKeyRing(testdata.Path(t, "alpine", "keys"))
	if err != nil {
		t.Fatal(err)
	}
	ix, err := index.Load(filepath.Join(dir, "APKINDEX.tar.gz"), keys, false)
	if err != nil {
		t.Fatal(err)
	}
	return dir, apktest.IndexRecords(t, ix.Text)
}

func readPkg(t testing.TB, dir string, r apktest.Record) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, r.Name+"-"+r.Version+".apk"))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// Every real package of the 3.19 repository verifies against the signed index and decodes.
func TestDecodeRealRepository(t *testing.T) {
	dir, recs := realRepo(t)
	if len(recs) != 100 {
		t.Fatalf("index has %d records, want 100", len(recs))
	}
	for _, r := range recs {
		p, err := pkgstream.Decode(r.Name, readPkg(t, dir, r), r.Identity)
		if err != nil {
			t.Errorf("Decode(%s) error: %v", r.Name, err)
			continue
		}
		if p.Info.Name != r.Name || p.Info.Version != r.Version {
			t.Errorf("Decode(%s) = %s-%s, want %s-%s", r.Name, p.Info.Name, p.Info.Version, r.Name, r.Version)
		}
	}
	bb, err := pkgstream.Decode("busybox", readPkg(t, dir, recs["busybox"]), recs["busybox"].Identity)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, s := range bb.Scripts {
		types = append(types, s.Type)
	}
	if got, want := strings.Join(types, " "), "post-install post-upgrade trigger"; got != want {
		t.Errorf("busybox scripts = %q, want %q", got, want)
	}
	if got, want := strings.Join(bb.Info.Triggers, " "), "/bin /usr/bin /sbin /usr/sbin /lib/modules/*"; got != want {
		t.Errorf("busybox triggers = %q, want %q", got, want)
	}
	var sawBin bool
	for _, f := range bb.Files {
		if f.Name == "bin/busybox" {
			sawBin = f.Type == tar.TypeReg && f.Mode == 0o755 && len(f.Data) > 100000 && f.Checksum != nil
		}
	}
	if !sawBin {
		t.Errorf("busybox: bin/busybox missing or wrong")
	}
}

// refDecode decodes a package the straightforward way, with compress/gzip and archive/tar, for
// the differential test (no verification beyond what it takes to build the same values).
func refDecode(t *testing.T, raw []byte) (*pkgstream.Package, error) {
	t.Helper()
	type member struct{ raw, tar []byte }
	var ms []member
	for off := 0; off < len(raw); {
		br := bytes.NewReader(raw[off:])
		zr, err := gzip.NewReader(br)
		if err != nil {
			t.Fatalf("gzip member at %d: %v", off, err)
		}
		zr.Multistream(false)
		d, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("gzip member at %d: %v", off, err)
		}
		end := len(raw) - br.Len()
		ms = append(ms, member{raw[off:end], d})
		off = end
	}
	walk := func(b []byte, fn func(h *tar.Header, data []byte)) {
		tr := tar.NewReader(bytes.NewReader(b))
		for {
			h, err := tr.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				t.Fatalf("tar: %v", err)
			}
			d, err := io.ReadAll(tr)
			if err != nil {
				t.Fatalf("tar: %v", err)
			}
			fn(h, d)
		}
	}
	p := &pkgstream.Package{}
	var infoErr error
	if len(ms) != 3 {
		t.Fatalf("%d gzip members, want 3", len(ms))
	}
	walk(ms[0].tar, func(h *tar.Header, d []byte) {
		p.Signatures = append(p.Signatures, sign.Signature{Name: h.Name, Value: d})
	})
	id := sha1.Sum(ms[1].raw)
	p.Identity = id[:]
	walk(ms[1].tar, func(h *tar.Header, d []byte) {
		switch {
		case h.Typeflag != tar.TypeReg:
		case h.Name == ".PKGINFO":
			p.Info, infoErr = pkgstream.ParseInfo(d)
		case strings.HasPrefix(h.Name, ".pre-") || strings.HasPrefix(h.Name, ".post-") || h.Name == ".trigger":
			p.Scripts = append(p.Scripts, pkgstream.Script{Type: h.Name[1:], Data: d})
		}
	})
	walk(ms[2].tar, func(h *tar.Header, d []byte) {
		name := strings.TrimSuffix(h.Name, "/")
		if strings.HasPrefix(name, ".") && !strings.Contains(name, "/") {
			return
		}
		f := pkgstream.File{
			Name: name, Type: h.Typeflag, Mode: uint32(h.Mode) & 0o7777, Uname: h.Uname, Gname: h.Gname,
			UID: h.Uid, GID: h.Gid, ModTime: h.ModTime, Linkname: h.Linkname,
			Devmajor: uint32(h.Devmajor), Devminor: uint32(h.Devminor),
		}
		for k, v := range h.PAXRecords {
			if n, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
				f.Xattrs = append(f.Xattrs, pkgstream.Xattr{Name: n, Value: []byte(v)})
			}
		}
		sort.Slice(f.Xattrs, func(i, j int) bool { return f.Xattrs[i].Name < f.Xattrs[j].Name })
		if c, ok := h.PAXRecords["APK-TOOLS.checksum.SHA1"]; ok {
			sum, err := hex.DecodeString(c)
			if err != nil {
				t.Fatal(err)
			}
			f.Checksum = sum
		}
		if h.Typeflag == tar.TypeReg && len(d) > 0 {
			f.Data = d
		}
		p.DataSize += int64(len(f.Data))
		p.Files = append(p.Files, f)
	})
	return p, infoErr
}

// scannerLines is data split into lines as bufio.Scanner does it (ParseInfo's former way),
// rejoined with "\n": ParseInfo must read both alike.
func scannerLines(data []byte) []byte {
	sc := bufio.NewScanner(bytes.NewReader(data))
	var b bytes.Buffer
	for sc.Scan() {
		b.WriteString(sc.Text())
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// Options.Yield is called between the data segment's deflate blocks and changes nothing in
// the result.
func TestDecodeYield(t *testing.T) {
	dir, recs := realRepo(t)
	for _, name := range []string{"busybox", "libcrypto3", "alpine-base"} {
		raw := readPkg(t, dir, recs[name])
		want, err := pkgstream.Decode(name, raw, recs[name].Identity)
		if err != nil {
			t.Fatal(err)
		}
		calls := 0
		got, err := pkgstream.DecodeWith(name, raw, recs[name].Identity, pkgstream.Options{Yield: func() { calls++ }})
		if err != nil {
			t.Fatalf("DecodeWith(%s, Yield) error: %v", name, err)
		}
		if len(got.Files) != len(want.Files) {
			t.Fatalf("DecodeWith(%s, Yield) = %d files, want %d", name, len(got.Files), len(want.Files))
		}
		for i := range got.Files {
			if g, w := &got.Files[i], &want.Files[i]; g.Name != w.Name || !bytes.Equal(g.Data, w.Data) {
				t.Errorf("DecodeWith(%s, Yield) file %d = %s (%d bytes), want %s (%d bytes)", name, i, g.Name, len(g.Data), w.Name, len(w.Data))
			}
		}
		// One call per deflate block: a block holds at most tens of kilobytes of output here,
		// so a package's data segment has at least its size / 128 KiB of them.
		if min := int(want.DataSize>>17) + 1; calls < min {
			t.Errorf("DecodeWith(%s, Yield): %d calls for %d bytes of data, want at least %d", name, calls, want.DataSize, min)
		}
	}
}

func TestParseInfo(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		ok         bool
	}{
		{"plain", "pkgname = a\npkgver = 1-r0\narch = x86_64\norigin = a\n", true},
		{"no final newline", "pkgname = a\npkgver = 1-r0", true},
		{"CRLF, comments, blank lines", "# generated\r\n\r\npkgname = a\r\n\npkgver = 1-r0\r\n#x = y\n", true},
		{"lists and numbers", "pkgname = a\npkgver = 1\ntriggers = /bin  /usr/bin\nreplaces = b\nreplaces = c d\n" +
			"replaces_priority = 5\nbuilddate = 1700000000\ndatahash = ABCDEF\nkey =  = value \n", true},
		{"empty value", "pkgname = a\npkgver = 1\nlicense = \n", true},
		{"line without separator", "pkgname = a\npkgver = 1\n\tLGPL-2.1\n", false},
		{"bad replaces_priority", "pkgname = a\npkgver = 1\nreplaces_priority = x\n", false},
		{"bad builddate", "pkgname = a\npkgver = 1\nbuilddate = 1.5\n", false},
		{"no pkgver", "pkgname = a\n", false},
		{"empty", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := pkgstream.ParseInfo([]byte(tc.text))
			want, werr := pkgstream.ParseInfo(scannerLines([]byte(tc.text)))
			if (err == nil) != tc.ok || (werr == nil) != tc.ok {
				t.Fatalf("ParseInfo() error = %v, reference %v; want ok %v", err, werr, tc.ok)
			}
			if err != nil {
				if !errors.Is(err, pkgstream.ErrFormat) || err.Error() != werr.Error() {
					t.Errorf("ParseInfo() error = %v, reference %v", err, werr)
				}
				return
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("ParseInfo() differs from the reference (-want +got):\n%s", d)
			}
		})
	}
	got, err := pkgstream.ParseInfo([]byte("pkgname = a\npkgver = 1\ntriggers = /bin  /usr/bin\nreplaces = b\nreplaces = c d\n" +
		"replaces_priority = 5\nbuilddate = 1700000000\ndatahash = ABCDEF\nkey =  = value \n"))
	want := pkgstream.Info{Name: "a", Version: "1", Triggers: []string{"/bin", "/usr/bin"}, Replaces: []string{"b", "c", "d"},
		ReplacesPriority: 5, BuildDate: 1700000000, DataHash: "abcdef",
		Fields: [][2]string{{"pkgname", "a"}, {"pkgver", "1"}, {"triggers", "/bin  /usr/bin"}, {"replaces", "b"}, {"replaces", "c d"},
			{"replaces_priority", "5"}, {"builddate", "1700000000"}, {"datahash", "ABCDEF"}, {"key", " = value "}}}
	if d := cmp.Diff(want, got); err != nil || d != "" {
		t.Errorf("ParseInfo(lists and numbers) = %v (-want +got):\n%s", err, d)
	}
}

// bytesEqual compares byte slices as cmp would, without its per-element reflection (file
// contents are megabytes): nil and empty differ.
var bytesEqual = cmp.Comparer(func(a, b []byte) bool { return bytes.Equal(a, b) && (a == nil) == (b == nil) })

// Every real package (3.19 x86_64, 3.13 aarch64) decodes to exactly what compress/gzip and
// archive/tar make of it.
func TestDecodeMatchesReference(t *testing.T) {
	var files []string
	for _, repo := range [][]string{{"v3.19", "x86_64"}, {"v3.13", "aarch64"}} {
		fs, _ := filepath.Glob(filepath.Join(testdata.Path(t, "alpine", repo[0], repo[1]), "*.apk"))
		if len(fs) < 60 {
			t.Fatalf("%s/%s: %d packages", repo[0], repo[1], len(fs))
		}
		files = append(files, fs...)
	}
	// Real packages carry no xattrs and whole-second mtimes: add a rebuilt one that has them.
	dir, recs := realRepo(t)
	synth, _ := apktest.Rebuild(t, readPkg(t, dir, recs["alpine-baselayout"]), nil, func(e []apktest.Entry) []apktest.Entry {
		for i := range e {
			h := e[i].Hdr
			h.ModTime = h.ModTime.Add(time.Duration(i*12345) * time.Microsecond)
			if h.PAXRecords == nil {
				h.PAXRecords = map[string]string{}
			}
			switch i % 3 {
			case 0:
				h.PAXRecords["SCHILY.xattr.user.z"] = "last"
				h.PAXRecords["SCHILY.xattr.security.capability"] = "\x01\x00\x00\x02\x00\x20"
				h.PAXRecords["SCHILY.xattr.user.empty"] = ""
			case 1:
				h.PAXRecords["SCHILY.xattr.trusted.x"] = strings.Repeat("v", i)
			}
		}
		return e
	}, true)
	synthFile := filepath.Join(t.TempDir(), "synthetic.apk")
	if err := os.WriteFile(synthFile, synth, 0o644); err != nil {
		t.Fatal(err)
	}
	files = append(files, synthFile)
	var xattrs, links, subsec int
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if f == synthFile {
			// Rebuild drops the signature member; the reference wants three members.
			raw = append(append([]byte{}, apktest.Members(t, readPkg(t, dir, recs["alpine-baselayout"]))[0]...), raw...)
		}
		got, err := pkgstream.Decode(filepath.Base(f), raw, nil)
		want, werr := refDecode(t, raw)
		if err != nil || werr != nil {
			// Two 3.13 packages have a .PKGINFO line apk 2 accepted (a continued license).
			if !errors.Is(err, pkgstream.ErrFormat) || !errors.Is(werr, pkgstream.ErrFormat) {
				t.Errorf("Decode: %v; reference: %v", err, werr)
			}
			continue
		}
		if d := cmp.Diff(want, got, bytesEqual); d != "" {
			t.Errorf("%s: Decode differs from the reference (-want +got):\n%s", filepath.Base(f), d)
		}
		for _, f := range got.Files {
			if len(f.Xattrs) > 0 {
				xattrs++
			}
			if f.Type == tar.TypeLink {
				links++
			}
			if f.ModTime.Nanosecond() != 0 {
				subsec++
			}
		}
	}
	t.Logf("%d packages; files with xattrs %d, hardlinks %d, sub-second mtimes %d", len(files), xattrs, links, subsec)
}

// ReadSignatures (also used for indexes) reads what compress/gzip and archive/tar read, finds
// the member's end, and reports a first member that holds other files as no signatures.
func TestReadSignatures(t *testing.T) {
	dir, recs := realRepo(t)
	index, err := os.ReadFile(filepath.Join(dir, "APKINDEX.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	ims := apktest.Members(t, index)
	pkg := readPkg(t, dir, recs["busybox"])
	pms := apktest.Members(t, pkg)
	sigMember := func(files ...apktest.Entry) []byte {
		return apktest.Gzip(t, apktest.WriteTar(t, files, true))
	}
	file := func(name string, size int) apktest.Entry {
		return apktest.Entry{Hdr: &tar.Header{Typeflag: tar.TypeReg, Name: name}, Data: bytes.Repeat([]byte{'s'}, size)}
	}
	twoSigs := sigMember(file(".SIGN.RSA.a.rsa.pub", 512), file(".SIGN.RSA256.b.rsa.pub", 256))
	// An unsigned index body bigger than the first buffer tried, its first file a small one.
	bigBody := sigMember(file("DESCRIPTION", 10), file("APKINDEX", 300<<10))
	tests := []struct {
		name    string
		raw     []byte
		wantEnd int
		want    error
	}{
		{"index", index, len(ims[0]), nil},
		{"package", pkg, len(pms[0]), nil},
		{"unsigned index", ims[1], 0, nil},
		{"unsigned package", append(append([]byte{}, pms[1]...), pms[2]...), 0, nil},
		{"unsigned big index", bigBody, 0, nil},
		{"two signatures", append(append([]byte{}, twoSigs...), ims[1]...), len(twoSigs), nil},
		{"signature, then another file", sigMember(file(".SIGN.RSA.a", 512), file("APKINDEX", 10)), 0, nil},
		{"signature over 64 KiB", sigMember(file(".SIGN.RSA.a", 65<<10)), 0, pkgstream.ErrFormat},
		{"signature cut", index[:len(ims[0])-10], 0, pkgstream.ErrTruncated},
		{"empty", nil, 0, pkgstream.ErrTruncated},
		{"not gzip", []byte("not a gzip member at all"), 0, pkgstream.ErrFormat},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sigs, end, err := pkgstream.ReadSignatures(tc.raw)
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("ReadSignatures() error = %v, want %v", err, tc.want)
				}
				return
			}
			if err != nil || end != tc.wantEnd {
				t.Fatalf("ReadSignatures() = end %d, %v; want end %d", end, err, tc.wantEnd)
			}
			var want []sign.Signature
			if end > 0 {
				for _, e := range apktest.ReadTar(t, apktest.Inflate(t, tc.raw[:end])) {
					want = append(want, sign.Signature{Name: e.Hdr.Name, Value: e.Data})
				}
			}
			if d := cmp.Diff(want, sigs, bytesEqual); d != "" {
				t.Errorf("signatures differ (-want +got):\n%s", d)
			}
		})
	}
}

func TestDecodeBroken(t *testing.T) {
	dir, recs := realRepo(t)
	r := recs["alpine-baselayout"]
	raw := readPkg(t, dir, r)
	editFirstFile := func(ents []apktest.Entry) []apktest.Entry {
		for i := range ents {
			if ents[i].Hdr.Typeflag == tar.TypeReg && len(ents[i].Data) > 0 {
				ents[i].Data = append([]byte("tampered "), ents[i].Data...)
				break
			}
		}
		return ents
	}
	fileBad, fileBadID := apktest.Rebuild(t, raw, nil, editFirstFile, true)
	dataBad, dataBadID := apktest.Rebuild(t, raw, nil, func(e []apktest.Entry) []apktest.Entry {
		e = editFirstFile(e)
		for i := range e {
			apktest.FileSum(&e[i])
		}
		return e
	}, false)
	ctlBad, _ := apktest.Rebuild(t, raw, func(e []apktest.Entry) []apktest.Entry {
		e[0].Data = append(e[0].Data, "# extra\n"...)
		return e
	}, nil, false)
	good, goodID := apktest.Rebuild(t, raw, nil, func(e []apktest.Entry) []apktest.Entry { return e }, true)
	ms := apktest.Members(t, raw)
	sigEnd, ctlEnd := len(ms[0]), len(ms[0])+len(ms[1])
	flip := func(at int) []byte {
		b := append([]byte{}, raw...)
		b[at] ^= 0x10
		return b
	}

	tests := []struct {
		name string
		raw  []byte
		id   []byte
		want error
	}{
		{"rebuilt intact", good, goodID, nil},
		{"control != C:", ctlBad, r.Identity, pkgstream.ErrIdentity},
		{"data != datahash", dataBad, dataBadID, pkgstream.ErrDataHash},
		{"file != checksum", fileBad, fileBadID, pkgstream.ErrFileHash},
		{"truncated", raw[:len(raw)-100], r.Identity, pkgstream.ErrTruncated},
		{"truncated in control", raw[:900], r.Identity, pkgstream.ErrTruncated},
		{"empty", nil, r.Identity, pkgstream.ErrTruncated},
		{"trailing garbage", append(append([]byte{}, raw...), "junk"...), r.Identity, pkgstream.ErrDataHash},
		{"truncated in signature", raw[:sigEnd/2], r.Identity, pkgstream.ErrTruncated},
		{"truncated in signature trailer", raw[:sigEnd-3], r.Identity, pkgstream.ErrTruncated},
		{"signature only", raw[:sigEnd], r.Identity, pkgstream.ErrTruncated},
		{"truncated in control header", raw[:sigEnd+5], r.Identity, pkgstream.ErrTruncated},
		{"truncated in control trailer", raw[:ctlEnd-3], r.Identity, pkgstream.ErrTruncated},
		{"no data member", raw[:ctlEnd], r.Identity, pkgstream.ErrTruncated},
		{"truncated in data header", raw[:ctlEnd+4], r.Identity, pkgstream.ErrTruncated},
		{"truncated in data trailer", raw[:len(raw)-3], r.Identity, pkgstream.ErrTruncated},
		{"signature CRC", flip(sigEnd - 6), r.Identity, pkgstream.ErrFormat},
		{"signature size", flip(sigEnd - 2), r.Identity, pkgstream.ErrFormat},
		{"signature deflate", flip(sigEnd / 2), r.Identity, pkgstream.ErrFormat},
		{"control CRC", flip(ctlEnd - 6), nil, pkgstream.ErrFormat},
		{"control size", flip(ctlEnd - 1), nil, pkgstream.ErrFormat},
		{"control deflate", flip(sigEnd + len(ms[1])/2), nil, pkgstream.ErrFormat},
		{"control not gzip", flip(sigEnd), nil, pkgstream.ErrFormat},
		{"data not gzip", flip(ctlEnd + 1), r.Identity, pkgstream.ErrDataHash},
		{"data deflate", flip(ctlEnd + 100), r.Identity, pkgstream.ErrDataHash},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := pkgstream.Decode("alpine-baselayout-3.4.3-r2", tc.raw, tc.id)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Decode() error = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Decode() = %v, %v; want error %v", p, err, tc.want)
			}
			if !strings.Contains(err.Error(), "alpine-baselayout-3.4.3-r2") {
				t.Errorf("error %q does not name the package", err)
			}
		})
	}
}

func BenchmarkDecodeBusybox(b *testing.B) {
	dir, recs := realRepo(b)
	raw := readPkg(b, dir, recs["busybox"])
	b.SetBytes(int64(len(raw)))
	start := cpuTime()
	for b.Loop() {
		if _, err := pkgstream.Decode("busybox", raw, recs["busybox"].Identity); err != nil {
			b.Fatal(err)
		}
	}
	// CPU time is what matters on a shared machine; wall time there is mostly waiting.
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N)/1e6, "cpu-ms/op")
}

func cpuTime() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkDecodeRepo decodes every package of the real x86_64 repository, the mix an install
// of the base world sees; the files are read before the clock starts. "heap" inflates into
// fresh memory (Decode); "reuse" into recycled memory, as the installer's arena does, which
// leaves out the zeroing and page faults of 50 MB per round.
func BenchmarkDecodeRepo(b *testing.B) {
	dir, recs := realRepo(b)
	type pkg struct {
		name string
		raw  []byte
		id   []byte
	}
	var pkgs []pkg
	var total int64
	for _, r := range recs {
		raw := readPkg(b, dir, r)
		pkgs = append(pkgs, pkg{r.Name, raw, r.Identity})
		total += int64(len(raw))
	}
	for _, bc := range []struct {
		name  string
		alloc pkgstream.Allocator
	}{{"heap", nil}, {"reuse", &reuseAlloc{}}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(total)
			start := cpuTime()
			for b.Loop() {
				for _, p := range pkgs {
					if _, err := pkgstream.DecodeWith(p.name, p.raw, p.id, pkgstream.Options{Alloc: bc.alloc}); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(cpuTime()-start)/float64(b.N)/1e6, "cpu-ms/op")
		})
	}
}

// reuseAlloc hands out the same memory for every package (the benchmark drops each package
// before decoding the next).
type reuseAlloc struct{ buf []byte }

func (a *reuseAlloc) Alloc(n int) []byte {
	if cap(a.buf) < n {
		a.buf = make([]byte, n)
	}
	return a.buf[:n]
}
