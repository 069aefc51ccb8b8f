package apkinstall_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ramboot/ramboot/internal/apkinstall"
	"github.com/ramboot/ramboot/internal/testdata"
)

// BenchmarkAddPhases installs both worlds with scripts (as the boot does) and reports each
// phase's mean in ms (scripts overlap the commit), so an optimisation shows where it helped.
func BenchmarkAddPhases(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root: package scripts run chrooted")
	}
	repo := testdata.Path(b, "alpine", "v3.19")
	keys := testdata.Path(b, "alpine", "keys")
	for _, w := range []struct {
		name  string
		world []string
	}{{"base", baseWorld}, {"big", bigWorld}} {
		b.Run(w.name, func(b *testing.B) {
			base := b.TempDir()
			var sum apkinstall.Timings
			i := 0
			for b.Loop() {
				i++
				root := filepath.Join(base, strconv.Itoa(i))
				res, err := apkinstall.Add(context.Background(), apkinstall.Options{
					Root: root, Repos: []apkinstall.Repo{{Path: repo}}, KeysDir: keys, Arch: "x86_64",
					InitDB: true,
				}, w.world)
				if err != nil {
					b.Fatal(err)
				}
				t := res.Timings
				if t.Total <= 0 || t.Commit <= 0 || t.Indexes <= 0 {
					b.Fatalf("Add().Timings = %+v, want every phase measured", t)
				}
				sum.Indexes += t.Indexes
				sum.Solve += t.Solve
				sum.Commit += t.Commit
				sum.Scripts += t.Scripts
				sum.Triggers += t.Triggers
				sum.Database += t.Database
				b.StopTimer()
				os.RemoveAll(root)
				b.StartTimer()
			}
			ms := func(d time.Duration) float64 { return float64(d) / float64(b.N) / 1e6 }
			b.ReportMetric(ms(sum.Indexes), "index-ms")
			b.ReportMetric(ms(sum.Solve), "solve-ms")
			b.ReportMetric(ms(sum.Commit), "commit-ms")
			b.ReportMetric(ms(sum.Scripts), "scripts-ms")
			b.ReportMetric(ms(sum.Triggers), "trigger-ms")
			b.ReportMetric(ms(sum.Database), "db-ms")
		})
	}
}
