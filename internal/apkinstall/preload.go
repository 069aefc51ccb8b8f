package apkinstall

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ramboot/ramboot/internal/apkarch"
	"github.com/ramboot/ramboot/internal/apkinstall/index"
	"github.com/ramboot/ramboot/internal/apkinstall/pkg"
	"github.com/ramboot/ramboot/internal/apkinstall/sign"
)

// RepoOptions select the repositories LoadRepos loads ahead of Add.
type RepoOptions struct {
	Repos          []Repo
	KeysDir        string // trusted keys (required: there is no root to default to)
	Arch           string // "" = the host's
	AllowUntrusted bool
}

// Repos are repository indexes loaded, verified and parsed ahead of Add (LoadRepos), so a caller
// can overlap that work with other things (PID 1 does it while the overlay is restored). Add
// takes them through Options.Preloaded. They are read-only once returned: Add copies the records
// it annotates, so one Repos may serve several Adds, also concurrently.
type Repos struct {
	arch     string
	keys     [sha256.Size]byte // digest of the trusted keys that verified them (keysDigest)
	untrusts bool              // loaded with AllowUntrusted
	repos    []preloaded
}

type preloaded struct {
	path     string // Repo.Path as given
	idxPath  string // the index file read
	isDir    bool   // Path was a repository directory
	signedBy string // "" = accepted untrusted
	pkgs     []*pkg.Package
}

// LoadRepos loads, verifies and parses the index of every repository in o. Any failure is an
// error and no Repos: the caller then lets Add load (and report) as it always does.
func LoadRepos(ctx context.Context, o RepoOptions) (*Repos, error) {
	if o.KeysDir == "" {
		return nil, errors.New("preload: no keys directory given")
	}
	arch := o.Arch
	if arch == "" {
		arch = apkarch.Runtime()
	}
	digest, err := keysDigest(o.KeysDir)
	if err != nil {
		return nil, err
	}
	keys, err := sign.LoadKeyRing(o.KeysDir)
	if err != nil {
		return nil, err
	}
	// The keys may have changed between the digest and the ring: a second digest after
	// loading proves the ring was built from exactly the digested files.
	if d2, err := keysDigest(o.KeysDir); err != nil || d2 != digest {
		return nil, fmt.Errorf("keys directory %s changed while loading", o.KeysDir)
	}
	rs := &Repos{arch: arch, keys: digest, untrusts: o.AllowUntrusted}
	seen := map[string]bool{}
	for _, r := range o.Repos {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if seen[r.Path] {
			continue
		}
		seen[r.Path] = true
		p, err := loadOne(r.Path, arch, keys, o.AllowUntrusted)
		if err != nil {
			return nil, err
		}
		rs.repos = append(rs.repos, p)
	}
	return rs, nil
}

// idxPathOf is where Add reads r's index: ARCH/APKINDEX.tar.gz in a repository directory,
// else the path itself.
func idxPathOf(path, arch string) (string, bool) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return filepath.Join(path, arch, "APKINDEX.tar.gz"), true
	}
	return path, false
}

func loadOne(path, arch string, keys *sign.KeyRing, allowUntrusted bool) (preloaded, error) {
	idxPath, isDir := idxPathOf(path, arch)
	ix, err := index.Load(idxPath, keys, allowUntrusted)
	if err != nil {
		return preloaded{}, err
	}
	pkgs, err := pkg.ParseIndex(bytes.NewReader(ix.Text))
	if err != nil {
		return preloaded{}, fmt.Errorf("index %s: %w", idxPath, err)
	}
	return preloaded{path: path, idxPath: idxPath, isDir: isDir, signedBy: ix.SignedBy, pkgs: pkgs}, nil
}

// keysDigest identifies the key set LoadKeyRing reads from dir (same files: not directories,
// not hidden), by name and content. Equal digests mean equal key rings, hence the same verdict
// on every index.
func keysDigest(dir string) ([sha256.Size]byte, error) {
	var zero [sha256.Size]byte
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return sha256.Sum256(nil), nil
	}
	if err != nil {
		return zero, fmt.Errorf("keys directory %s: %w", dir, err)
	}
	h := sha256.New()
	for _, e := range ents { // ReadDir sorts by name
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return zero, fmt.Errorf("key %s: %w", filepath.Join(dir, e.Name()), err)
		}
		fmt.Fprintf(h, "%d:%s%d:", len(e.Name()), e.Name(), len(data))
		h.Write(data)
	}
	var d [sha256.Size]byte
	copy(d[:], h.Sum(nil))
	return d, nil
}

// preloadFor returns the preloaded index of the repository at path when it was loaded exactly
// as Add would load it now: same index file, architecture and trusted keys, and verified by a
// key unless untrusted indexes are allowed now too. Anything else means a normal load.
func (rs *Repos) preloadFor(path, idxPath, arch string, keys [sha256.Size]byte, allowUntrusted bool) *preloaded {
	if rs == nil || rs.arch != arch || rs.keys != keys {
		return nil
	}
	for i := range rs.repos {
		p := &rs.repos[i]
		if p.path == path && p.idxPath == idxPath && (p.signedBy != "" || allowUntrusted) {
			return p
		}
	}
	return nil
}
