package apkinstall_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/ramboot/ramboot/internal/apkinstall"
	"github.com/ramboot/ramboot/internal/testdata"
)

// BenchmarkAdd installs the bigger world (no scripts: they run the root's busybox, which is
// the same cost for any installer) into a fresh directory per iteration.
func BenchmarkAdd(b *testing.B) {
	repo := testdata.Path(b, "alpine", "v3.19")
	keys := testdata.Path(b, "alpine", "keys")
	base := b.TempDir()
	i := 0
	var cpu int64
	for b.Loop() {
		start := cpuTime()
		i++
		root := filepath.Join(base, "r", string(rune('a'+i%26))+filepath.Base(os.TempDir())+string(rune(i)))
		_, err := apkinstall.Add(context.Background(), apkinstall.Options{
			Root: root, Repos: []apkinstall.Repo{{Path: repo}}, KeysDir: keys, Arch: "x86_64",
			InitDB: true, NoScripts: true,
		}, bigWorld)
		if err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime() - start
		b.StopTimer()
		os.RemoveAll(root)
		b.StartTimer()
	}
	// CPU time is what matters on a shared machine; wall time there is mostly waiting.
	b.ReportMetric(float64(cpu)/float64(b.N)/1e6, "cpu-ms/op")
}

func cpuTime() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
