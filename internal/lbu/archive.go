package lbu

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ramboot/ramboot/overlay"
)

// FileList returns what `lbu package` archives, sorted: the audit result (without deletions)
// plus every "+X" of lbu.list naming an existing non-directory or symlink (so files directly
// under / and files identical to the package can be included, as alpine-conf does since 2026).
// Directories end in "/" and stand for themselves only (tar --no-recursion).
func FileList(root string) ([]string, error) {
	rules, err := LoadRules(root)
	if err != nil {
		return nil, err
	}
	changes, err := Audit(root, rules)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, c := range changes {
		if c.Reason != 'X' {
			add(c.Path)
		}
	}
	incs, err := ListEntries(root, '+')
	if err != nil {
		return nil, err
	}
	for _, p := range incs {
		p = strings.Trim(p, "/")
		if info, err := os.Lstat(filepath.Join(root, p)); err == nil && (info.Mode()&os.ModeSymlink != 0 || !info.IsDir()) {
			add(p)
		}
	}
	sort.Strings(out)
	return out, nil
}

// Entry describes one archive member; the manifest of an archive is used to verify what was
// written and to compare overlays (status, diff).
type Entry struct {
	Name     string // relative, directories end in "/"
	Type     byte   // tar type flag
	Mode     int64  // permission bits
	UID, GID int
	Size     int64
	SHA256   [32]byte // regular files
	Link     string   // symlink or hardlink target
	Data     []byte   // regular file content (kept only when asked for, for diff)
}

// Manifest is an archive's entries by name.
type Manifest map[string]*Entry

func normName(n string) string {
	n = strings.TrimPrefix(n, "./")
	for strings.HasPrefix(n, "/") {
		n = n[1:]
	}
	return n
}

// ReadManifest walks a gzip tar stream into a manifest (with content when keepData).
func ReadManifest(gz []byte, maxBytes int64, keepData bool) (Manifest, error) {
	m := Manifest{}
	err := overlay.WalkTar(gz, maxBytes, func(h *tar.Header, r io.Reader) error {
		name := normName(h.Name)
		if name == "" {
			return nil
		}
		e := &Entry{Name: name, Type: h.Typeflag, Mode: h.Mode & 07777, UID: h.Uid, GID: h.Gid, Size: h.Size, Link: h.Linkname}
		if h.Typeflag == tar.TypeReg || h.Typeflag == tar.TypeRegA {
			e.Type = tar.TypeReg
			hs := sha256.New()
			var w io.Writer = hs
			var buf bytes.Buffer
			if keepData {
				w = io.MultiWriter(hs, &buf)
			}
			if _, err := io.Copy(w, r); err != nil {
				return err
			}
			copy(e.SHA256[:], hs.Sum(nil))
			if keepData {
				e.Data = buf.Bytes()
			}
		}
		m[name] = e
		return nil
	})
	return m, err
}

// idNames maps numeric ids to names from ROOT/etc/passwd or ROOT/etc/group (tar stores both).
func idNames(root, file string) map[int]string {
	out := map[int]string{}
	f, err := os.Open(filepath.Join(root, file))
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Split(sc.Text(), ":")
		if len(fs) < 3 {
			continue
		}
		if id, err := strconv.Atoi(fs[2]); err == nil {
			if _, dup := out[id]; !dup {
				out[id] = fs[0]
			}
		}
	}
	return out
}

// BuildArchive packs files (root-relative, directories ending in "/") from root into a gzip
// tar the way `tar -c --no-recursion -T - -z` does in lbu: relative names, numeric and named
// owners, modes, mtimes, symlinks, hardlinks between listed files. GNU format (long names) and
// a zero gzip timestamp keep it readable by busybox tar and reproducible.
func BuildArchive(root string, files []string) ([]byte, Manifest, error) {
	users, groups := idNames(root, "etc/passwd"), idNames(root, "etc/group")
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	tw := tar.NewWriter(zw)
	man := Manifest{}
	type ino struct{ dev, ino uint64 }
	links := map[ino]string{}
	for _, name := range files {
		full := filepath.Join(root, name)
		info, err := os.Lstat(full)
		if err != nil {
			return nil, nil, fmt.Errorf("package %s: %w", name, err)
		}
		link := ""
		if info.Mode()&os.ModeSymlink != 0 {
			if link, err = os.Readlink(full); err != nil {
				return nil, nil, fmt.Errorf("package %s: %w", name, err)
			}
		}
		if !info.Mode().IsRegular() && !info.IsDir() && info.Mode()&os.ModeSymlink == 0 {
			continue // sockets, devices, fifos: tar would store them; they are never config
		}
		h, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return nil, nil, fmt.Errorf("package %s: %w", name, err)
		}
		st := info.Sys().(*syscall.Stat_t)
		h.Name = strings.TrimSuffix(name, "/")
		if info.IsDir() {
			h.Name += "/"
		}
		h.Format = tar.FormatGNU
		h.Mode = int64(st.Mode & 07777)
		h.Uid, h.Gid = int(st.Uid), int(st.Gid)
		h.Uname, h.Gname = users[h.Uid], groups[h.Gid]
		h.ModTime = info.ModTime().Truncate(time.Second)
		h.AccessTime, h.ChangeTime = time.Time{}, time.Time{}
		e := &Entry{Name: h.Name, Mode: h.Mode, UID: h.Uid, GID: h.Gid, Link: link}
		var data []byte
		if info.Mode().IsRegular() {
			key := ino{uint64(st.Dev), st.Ino}
			if first, ok := links[key]; ok && st.Nlink > 1 {
				h.Typeflag, h.Linkname, h.Size = tar.TypeLink, first, 0
				e.Link = first
			} else {
				links[key] = h.Name
				if data, err = os.ReadFile(full); err != nil {
					return nil, nil, fmt.Errorf("package %s: %w", name, err)
				}
				h.Size = int64(len(data))
				e.SHA256 = sha256.Sum256(data)
			}
		}
		e.Type, e.Size = h.Typeflag, h.Size
		if err := tw.WriteHeader(h); err != nil {
			return nil, nil, fmt.Errorf("package %s: %w", name, err)
		}
		if _, err := tw.Write(data); err != nil {
			return nil, nil, fmt.Errorf("package %s: %w", name, err)
		}
		man[normName(h.Name)] = e
	}
	if err := tw.Close(); err != nil {
		return nil, nil, fmt.Errorf("package: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, nil, fmt.Errorf("package: %w", err)
	}
	return out.Bytes(), man, nil
}

// sameManifest reports the first difference between what was written and what was read back.
func sameManifest(want, got Manifest) error {
	if len(want) != len(got) {
		return fmt.Errorf("%d entries written, %d read back", len(want), len(got))
	}
	for n, w := range want {
		g, ok := got[n]
		if !ok {
			return fmt.Errorf("%s missing when read back", n)
		}
		if w.Type != g.Type || w.Mode != g.Mode || w.UID != g.UID || w.GID != g.GID || w.Size != g.Size || w.SHA256 != g.SHA256 || w.Link != g.Link {
			return fmt.Errorf("%s differs when read back", n)
		}
	}
	return nil
}

// runPartsName is run-parts' rule for which files to run, ^[A-Za-z0-9_-]+$ (plain code: the
// agent binary, which is also PID 1, would compile a regexp at every start).
func runPartsName(name string) bool {
	for i := 0; i < len(name); i++ {
		if b := name[i]; !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '_' || b == '-') {
			return false
		}
	}
	return name != ""
}

// runHooks runs the executables of ROOT/etc/lbu/<dir> in name order, like run-parts, each with
// a timeout, output to stderr. The first failure stops and is returned.
func runHooks(ctx context.Context, root, dir string, stderr io.Writer, timeout time.Duration) error {
	d := filepath.Join(root, "etc/lbu", dir)
	ents, err := os.ReadDir(d)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("hooks %s: %w", d, err)
	}
	for _, e := range ents {
		p := filepath.Join(d, e.Name())
		info, err := os.Stat(p)
		if err != nil || !info.Mode().IsRegular() || info.Mode()&0111 == 0 || !runPartsName(e.Name()) {
			continue
		}
		hctx, cancel := context.WithTimeout(ctx, timeout)
		cmd := exec.CommandContext(hctx, p)
		cmd.Stdout, cmd.Stderr = stderr, stderr
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "ROOT="+root)
		// A hook's background children may keep its output open: do not wait for them forever.
		cmd.WaitDelay = 2 * time.Second
		err = cmd.Run()
		cancel()
		if err != nil {
			if hctx.Err() == context.DeadlineExceeded {
				return fmt.Errorf("hook %s: timed out after %s", p, timeout)
			}
			return fmt.Errorf("hook %s: %w", p, err)
		}
	}
	return nil
}
