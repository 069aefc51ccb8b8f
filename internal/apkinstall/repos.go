package apkinstall

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ramboot/ramboot/internal/apkinstall/db"
	"github.com/ramboot/ramboot/internal/apkinstall/index"
	"github.com/ramboot/ramboot/internal/apkinstall/pkg"
	"github.com/ramboot/ramboot/internal/apkinstall/sign"
	"github.com/ramboot/ramboot/internal/apkinstall/solver"
)

type repo struct {
	tag    string
	pkgDir string // directory holding the .apk files ("" = ARCH subdirectory by package arch)
	base   string // repository directory when given as a directory
	pkgs   []*pkg.Package
}

// loadRepos reads the explicit repositories and ROOT/etc/apk/repositories, verifies each index
// and parses its packages.
func (in *installer) loadRepos() error {
	o := &in.opts
	keysDir := o.KeysDir
	if keysDir == "" {
		keysDir = filepath.Join(o.Root, db.KeysDir)
	}
	var digest [sha256.Size]byte
	usePreload := false
	if o.Preloaded != nil {
		// Only the very key set the preload verified with counts; any other (or a keys
		// directory that cannot be read) is loaded, and its errors reported, as usual.
		if d, err := keysDigest(keysDir); err == nil && d == o.Preloaded.keys {
			digest, usePreload = d, true
		}
	}
	// The key ring is only needed for an index that was not preloaded.
	var keys *sign.KeyRing
	keyRing := func() (*sign.KeyRing, error) {
		if keys != nil {
			return keys, nil
		}
		var err error
		keys, err = sign.LoadKeyRing(keysDir)
		return keys, err
	}
	if !usePreload {
		if _, err := keyRing(); err != nil {
			return err
		}
	}
	list := append([]Repo(nil), o.Repos...)
	reposFile := o.RepositoriesFile
	if reposFile == "" {
		reposFile = filepath.Join(o.Root, db.ReposPath)
	} else if _, err := os.Stat(reposFile); err != nil {
		return fmt.Errorf("repositories file: %w", err)
	}
	lines, err := db.ReadRepositories(reposFile)
	if err != nil {
		return err
	}
	for _, l := range lines {
		p := l.URL
		if strings.Contains(p, "://") {
			if !strings.HasPrefix(p, "file://") {
				fmt.Fprintf(in.errw, "WARNING: Ignoring %s: network repositories are not supported\n", p)
				continue
			}
			p = strings.TrimPrefix(p, "file://")
		}
		p = strings.TrimPrefix(p, "file:")
		list = append(list, Repo{Tag: l.Tag, Path: p})
	}
	seen := map[Repo]bool{}
	for _, r := range list {
		if seen[r] {
			continue
		}
		seen[r] = true
		rp := &repo{tag: r.Tag}
		idxPath, isDir := idxPathOf(r.Path, in.arch)
		if isDir {
			rp.base = r.Path
		} else {
			rp.pkgDir = filepath.Dir(r.Path)
		}
		var pkgs []*pkg.Package
		var pre *preloaded
		if usePreload {
			pre = o.Preloaded.preloadFor(r.Path, idxPath, in.arch, digest, o.AllowUntrusted)
		}
		if pre != nil {
			// Copies: Add annotates the records (repository number and tag) and the
			// preloaded ones stay as they were for any other user.
			pkgs = make([]*pkg.Package, len(pre.pkgs))
			for i, p := range pre.pkgs {
				cp := *p
				pkgs[i] = &cp
			}
			in.res.Preloaded++
		} else {
			keys, err := keyRing()
			if err != nil {
				return err
			}
			ix, err := index.Load(idxPath, keys, o.AllowUntrusted)
			if err != nil {
				if errors.Is(err, sign.ErrUntrusted) {
					err = fmt.Errorf("%w (trusted keys from %s; use --allow-untrusted to accept it)", err, keysDir)
				}
				if o.Diskless {
					// The boot goes on with the repositories it can trust.
					fmt.Fprintf(in.errw, "WARNING: Ignoring %s: %v\n", r.Path, err)
					continue
				}
				return err
			}
			pkgs, err = pkg.ParseIndex(bytes.NewReader(ix.Text))
			if err != nil {
				return fmt.Errorf("index %s: %w", idxPath, err)
			}
		}
		for _, p := range pkgs {
			p.Repo = len(in.repos)
			p.RepoTag = r.Tag
		}
		rp.pkgs = pkgs
		in.repos = append(in.repos, rp)
	}
	return nil
}

func (in *installer) pkgFile(p *pkg.Package) string {
	name := p.Name + "-" + p.Version + ".apk"
	if p.Repo < 0 || p.Repo >= len(in.repos) {
		return ""
	}
	r := in.repos[p.Repo]
	if r.pkgDir != "" {
		return filepath.Join(r.pkgDir, name)
	}
	arch := p.Arch
	if arch == "" || arch == "noarch" {
		arch = in.arch
	}
	return filepath.Join(r.base, arch, name)
}

// printOK prints apk 2.x's summary line from the database as it now is (failed packages are
// not counted), or "N errors; ..." when something failed.
func (in *installer) printOK(sol *solver.Solution) {
	s := *sol
	s.InstalledBytes, s.InstalledPackages = 0, len(in.db.Packages)
	for _, e := range in.db.Packages {
		s.InstalledBytes += e.Pkg.InstalledSize
	}
	fmt.Fprintln(in.out, s.OKLine(solver.StyleAPK2, in.res.Errors))
}
