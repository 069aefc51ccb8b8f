package solver

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/ramboot/ramboot/internal/apkinstall/pkg"
	"github.com/ramboot/ramboot/internal/testdata"
)

// BenchmarkSolveReal solves the largest boot world of the issue against Alpine 3.19.1's
// boot repository.
func BenchmarkSolveReal(b *testing.B) {
	repo := loadAPKINDEX(b, testdata.Path(b, "alpine", "v3.19", "x86_64", "APKINDEX.tar.gz"))
	w, err := ParseWorld(realCases[1].world)
	if err != nil {
		b.Fatal(err)
	}
	req := Request{World: w, Repos: []Repository{{Packages: repo}}}
	for b.Loop() {
		if _, err := Solve(req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSolveLarge solves a 100-package world against a synthetic 20000-package repository
// (the size of Alpine main+community) with random acyclic dependencies and so: provides.
func BenchmarkSolveLarge(b *testing.B) {
	r := rand.New(rand.NewSource(1))
	const n = 20000
	pkgs := make([]*pkg.Package, n)
	for i := range pkgs {
		p := &pkg.Package{Name: fmt.Sprintf("p%d", i), Version: "1.0-r0", Checksum: fmt.Sprintf("id%d", i), InstalledSize: 1000}
		p.Provides = []pkg.Dependency{{Name: fmt.Sprintf("so:lib%d.so.1", i), Op: pkg.Equal, Version: "1"}}
		for j := 0; j < 4 && i > 0; j++ {
			d := r.Intn(i)
			if j%2 == 0 {
				p.Depends = append(p.Depends, pkg.Dependency{Name: fmt.Sprintf("p%d", d), Op: pkg.Any})
			} else {
				p.Depends = append(p.Depends, pkg.Dependency{Name: fmt.Sprintf("so:lib%d.so.1", d), Op: pkg.Any})
			}
		}
		pkgs[i] = p
	}
	var w []pkg.Dependency
	for i := 0; i < 100; i++ {
		w = append(w, pkg.Dependency{Name: fmt.Sprintf("p%d", n-1-i*7), Op: pkg.Any})
	}
	req := Request{World: w, Repos: []Repository{{Packages: pkgs}}}
	for b.Loop() {
		if _, err := Solve(req); err != nil {
			b.Fatal(err)
		}
	}
}
