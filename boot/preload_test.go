package boot

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ramboot/ramboot/internal/apkinstall/apktest"
	"github.com/ramboot/ramboot/internal/testdata"
)

// TestPreloadIndexErrors boots with the real installer from a repository whose index cannot be
// used, with and without the background index preload: the world phase must report the same
// error, and the console the same apk warnings, either way (the preload never hides or changes
// an index error; the install loads again and reports it).
func TestPreloadIndexErrors(t *testing.T) {
	shared := testdata.Shared(t)
	realKeys, _ := filepath.Glob(filepath.Join(shared, "alpine/keys/*.pub"))
	if len(realKeys) == 0 {
		t.Skipf("prerequisite missing: Alpine keys in %s", shared)
	}
	other := apktest.NewKey(t, "other.rsa.pub")
	untrusted := apktest.SignedIndex(t, other, []byte("P:busybox\nV:1.0-r0\nA:x86_64\nS:1\nI:1\nT:t\nU:u\nL:MIT\nC:Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n"))
	tests := []struct {
		name     string
		index    []byte
		realKeys bool   // replace the harness's broken key with Alpine's
		want     string // in the world phase error or the console output
	}{
		{"broken key in the initramfs", []byte("not an index"), false, "alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub"},
		{"corrupt index", []byte("not an index"), true, "WARNING: Ignoring /media/vda/apks: index /media/vda/apks/x86_64/APKINDEX.tar.gz"},
		{"untrusted index", untrusted, true, "UNTRUSTED signature"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			boot := func(preload bool) (worldErr, console string) {
				sc := scenario{
					cmdline: "console=ttyS0",
					media: []fakeMedium{{dev: "vda", fstype: "vfat", files: map[string][]byte{
						"apks/.boot_repository":       nil,
						"apks/x86_64/APKINDEX.tar.gz": tc.index,
					}}},
				}
				h := newHarness(t, sc)
				if tc.realKeys {
					for _, k := range realKeys {
						apktest.Must(t, copyFile(k, filepath.Join(h.root, "etc/apk/keys", filepath.Base(k)), 0o644))
					}
				}
				var out bytes.Buffer
				h.env.Log = NewLogger(&out)
				h.env.Deps.Install = InstallApk
				if preload {
					h.env.Deps.Preload = PreloadApk
				} else {
					h.env.Deps.Preload = nil
				}
				// Nothing is installed, so the boot ends at the handover (no /sbin/init).
				res, err := Run(context.Background(), h.env)
				if f, ok := err.(*Failure); !ok || f.Phase != "handover" || res == nil {
					t.Fatalf("Run(preload=%v) = %v, want the handover to fail (the world phase is best-effort)", preload, err)
				}
				found := false
				for _, p := range res.Report.Phases {
					if p.Name == "world" {
						found = true
						if p.Status != "failed" {
							t.Errorf("preload=%v: world phase = %+v, want failed", preload, p)
						}
						worldErr = p.Error
					}
				}
				if !found {
					t.Fatalf("preload=%v: no world phase in the report", preload)
				}
				if res.Report.PreloadedRepos != 0 {
					t.Errorf("preload=%v: report preloaded repositories = %d, want 0 (nothing usable)", preload, res.Report.PreloadedRepos)
				}
				var lines []string
				for _, l := range strings.Split(out.String(), "\n") {
					if strings.Contains(l, "WARNING") || strings.Contains(l, "ERROR") || strings.Contains(l, "world") {
						lines = append(lines, strings.ReplaceAll(l, h.root, ""))
					}
				}
				return strings.ReplaceAll(worldErr, h.root, ""), strings.Join(lines, "\n")
			}
			errWith, outWith := boot(true)
			errWithout, outWithout := boot(false)
			t.Logf("world phase error: %s\nconsole:\n%s", errWith, outWith)
			if errWith != errWithout {
				t.Errorf("world phase error with preload = %q, want as without: %q", errWith, errWithout)
			}
			if diff := cmp.Diff(outWithout, outWith); diff != "" {
				t.Errorf("console with preload differs from without (-without +with):\n%s", diff)
			}
			if !strings.Contains(errWith+"\n"+outWith, tc.want) {
				t.Errorf("world phase error %q and console %q, want them to name %q", errWith, outWith, tc.want)
			}
		})
	}
}
