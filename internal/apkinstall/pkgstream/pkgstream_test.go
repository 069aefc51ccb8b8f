package pkgstream_test

import (
	"archive/tar"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

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
