// Package extract writes a verified package's files into a root directory the way apk does it:
// owners resolved by name through the root's own etc/passwd and etc/group, modes including
// setuid/setgid, symlinks, hardlinks, device nodes, xattrs and mtimes.
//
// Nothing is ever written outside the root: every entry name is checked before the first write
// (no absolute names, no "." or ".." components, no control characters; a file's directory must
// be a directory entry of the same package, as apk requires), parent directories are opened with
// openat2(RESOLVE_IN_ROOT) so symlinks, even absolute ones, resolve inside the root, the last
// component is never followed, and a hardlink may only point at a file of the same package.
package extract

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
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ramboot/ramboot/internal/apkinstall/pkgstream"
	"github.com/ramboot/ramboot/internal/passwd"
)

// ACL is the ownership and permission apk records per file and directory.
type ACL struct {
	UID, GID  int
	Mode      uint32 // 07777 bits
	XattrHash []byte // SHA-1 over the sorted xattrs (apk_fileinfo_hash_xattr_array); nil if none
}

// FileRecord is one non-directory the package owns.
type FileRecord struct {
	Name     string // full relative path
	ACL      ACL
	Checksum []byte // SHA-1 of the content (symlink: of the target); nil if the archive had none
	Kept     bool   // an overlay file was kept in place of the package's copy
}

// DirRecord is one directory the package owns, with the files directly inside it.
type DirRecord struct {
	Name  string // relative path, "" for the root
	ACL   ACL
	Files []FileRecord

	// Created is set when this package created the directory; otherwise Existing is what was
	// found on disk. apk only fixes up permissions of directories it created or whose
	// metadata still matches what the packages declare (apk_db_dir_prepare).
	Created  bool
	Existing ACL
}

// Result lists what a package installed, in archive order, ready for the installed database.
type Result struct {
	Dirs         []DirRecord
	BrokenXattrs bool // some xattr could not be set (apk records f:x)
}

// Error is a refusal naming the package and the entry.
type Error struct {
	Package, Entry string
	Err            error
}

func (e *Error) Error() string {
	if e.Entry == "" {
		return e.Package + ": " + e.Err.Error()
	}
	return e.Package + ": " + e.Entry + ": " + e.Err.Error()
}
func (e *Error) Unwrap() error { return e.Err }

// ErrMalicious marks an entry that tries to leave the root or is otherwise unsafe.
var ErrMalicious = errors.New("malicious file name refused")

// Extractor installs packages into one root. It is not safe for concurrent use.
type Extractor struct {
	root    string
	rootFD  int
	overlay map[string]bool
	ids     ids
	users   idFile // etc/passwd as last read, for ids
	groups  idFile // etc/group
	// umask, euid and egid decide when the mode and owner a file is created with are already
	// right, saving a chown and a chmod per file (most files are root:root 0644/0755).
	umask      uint32
	euid, egid int

	protect        []protectRule
	cleanProtected bool
	owned          func(name string) []byte
}

// Options configure an Extractor beyond the root.
type Options struct {
	// Overlay lists root-relative paths an overlay placed: a package's copy is discarded.
	Overlay []string
	// CleanProtected discards a package's copy of a modified protected file instead of writing
	// it beside as NAME.apk-new (apk --clean-protected).
	CleanProtected bool
	// Owned returns the checksum the database records for a path owned by an installed
	// package, or nil if no package owns it. nil Owned = nothing is owned.
	Owned func(name string) []byte
}

// protectRule is one protected_paths rule: '+' protect, '-' protect (ignored by audit),
// '@' protect symlinks only, '!' not protected.
type protectRule struct {
	mode byte
	path string
}

// defaultProtect is apk's built-in rule set.
var defaultProtect = []protectRule{{'+', "etc"}, {'@', "etc/init.d"}, {'!', "etc/apk"}}

// Open prepares extraction into root (which must exist). overlay lists root-relative paths that
// an overlay placed: a package's copy of such a path is discarded and the existing file kept.
func Open(root string, overlay []string) (*Extractor, error) {
	return OpenWith(root, Options{Overlay: overlay})
}

// OpenWith is Open with all options.
func OpenWith(root string, opts Options) (*Extractor, error) {
	overlay := opts.Overlay
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open root %s: %w", root, err)
	}
	x := &Extractor{root: root, rootFD: fd, overlay: map[string]bool{}, umask: readUmask(), euid: os.Geteuid(), egid: os.Getegid()}
	for _, p := range overlay {
		p = strings.Trim(path.Clean("/"+strings.TrimSpace(p)), "/")
		if p != "" {
			x.overlay[p] = true
		}
	}
	x.cleanProtected, x.owned = opts.CleanProtected, opts.Owned
	x.protect = append(append([]protectRule(nil), defaultProtect...), x.readProtectedPaths()...)
	x.ReloadIDs()
	return x, nil
}

// readProtectedPaths reads ROOT/etc/apk/protected_paths.d/*.list (lines "+path", "-path",
// "@path", "!path"; # comments).
func (x *Extractor) readProtectedPaths() []protectRule {
	var rules []protectRule
	files, _ := filepath.Glob(filepath.Join(x.root, "etc/apk/protected_paths.d/*.list"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(data), "\n") {
			l = strings.TrimSpace(l)
			if len(l) < 2 || !strings.ContainsRune("+-@!", rune(l[0])) {
				continue
			}
			rules = append(rules, protectRule{l[0], strings.Trim(path.Clean("/"+l[1:]), "/")})
		}
	}
	return rules
}

// protected reports whether a package may not silently replace an existing name: the most
// specific rule for its directory decides (apk's per-directory protect_mode).
func (x *Extractor) protected(name string, symlink bool) bool {
	dir := path.Dir(name)
	best, mode := -1, byte('!')
	for _, r := range x.protect {
		if (dir == r.path || strings.HasPrefix(dir, r.path+"/")) && len(r.path) > best {
			best, mode = len(r.path), r.mode
		}
	}
	switch mode {
	case '+', '-':
		return true
	case '@':
		return symlink
	}
	return false
}

// readUmask reads the process umask from /proc (Linux >= 4.7) without changing it; unknown
// means "always chmod".
func readUmask() uint32 {
	b, err := os.ReadFile("/proc/self/status")
	if err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "Umask:"); ok {
				if n, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
					return uint32(n)
				}
			}
		}
	}
	return 0o7777
}

// needChmod says whether a file created with acl.Mode&0777 needs an explicit chmod.
func (x *Extractor) needChmod(acl ACL) bool {
	return acl.Mode&^0o777 != 0 || acl.Mode&x.umask != 0
}

// needChown says whether a new entry in a directory with mode parentMode needs an explicit
// chown (new files get the creator's uid, and its gid unless the directory is setgid).
func (x *Extractor) needChown(acl ACL, parentMode uint32) bool {
	return acl.UID != x.euid || acl.GID != x.egid || parentMode&unix.S_ISGID != 0
}

// Close releases the root descriptor.
func (x *Extractor) Close() error { return unix.Close(x.rootFD) }

// ReloadIDs re-reads the root's etc/passwd and etc/group. apk resolves owners through the files
// as they are when a package is extracted (alpine-baselayout-data installs them first, and
// scripts may add users), so the installer calls this before each package.
//
// A file whose identity, size and times are unchanged since it was last read is not read
// again: the installer calls this before every package, and re-parsing both files each time
// was about 2% of an install's CPU, on the writer's critical path.
func (x *Extractor) ReloadIDs() {
	x.ids.users = x.users.reload(x.rootFD, "etc/passwd")
	x.ids.groups = x.groups.reload(x.rootFD, "etc/group")
}

// idFile is a parsed etc/passwd or etc/group and the stat it was parsed at.
type idFile struct {
	key  idKey
	read bool
	ids  map[string]int
}

type idKey struct {
	dev, ino     uint64
	size         int64
	mtime, ctime unix.Timespec
}

func (c *idFile) reload(rootFD int, name string) map[string]int {
	fd, err := unix.Openat2(rootFD, name, &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT})
	if err != nil {
		*c = idFile{}
		return map[string]int{}
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		*c = idFile{}
		return passwd.ParseIDs(f)
	}
	key := idKey{st.Dev, st.Ino, st.Size, st.Mtim, st.Ctim}
	if c.read && c.key == key {
		return c.ids
	}
	*c = idFile{key: key, read: true, ids: passwd.ParseIDs(f)}
	return c.ids
}

type ids struct{ users, groups map[string]int }

func (x *Extractor) uid(f *pkgstream.File) int {
	if id, ok := x.ids.users[f.Uname]; ok && f.Uname != "" {
		return id
	}
	return f.UID
}

func (x *Extractor) gid(f *pkgstream.File) int {
	if id, ok := x.ids.groups[f.Gname]; ok && f.Gname != "" {
		return id
	}
	return f.GID
}

// ValidName reports whether an archive entry name is acceptable: relative, no empty, "." or ".."
// components, no control characters (apk's "ignoring malicious file" rules).
func ValidName(name string) bool {
	if name == "" || name[0] == '/' || len(name) > 4096 {
		return false
	}
	for _, c := range []byte(name) {
		if c < 0x20 || c == 0x7f {
			return false
		}
	}
	for _, c := range strings.Split(name, "/") {
		if c == "" || c == "." || c == ".." {
			return false
		}
	}
	return true
}

// Check validates every entry of a package without touching the disk.
func Check(pkgName string, files []pkgstream.File) error {
	dirs := map[string]bool{"": true}
	regs := map[string]bool{}
	links := map[string]bool{} // symlinks of this package
	for i := range files {
		f := &files[i]
		if !ValidName(f.Name) {
			return &Error{pkgName, f.Name, ErrMalicious}
		}
		parent := path.Dir(f.Name)
		if parent == "." {
			parent = ""
		}
		switch f.Type {
		case tar.TypeDir:
			// A directory entry over the package's own symlink would let later entries be
			// written wherever the symlink points.
			if links[f.Name] {
				return &Error{pkgName, f.Name, fmt.Errorf("directory entry over a symlink of the same package: %w", ErrMalicious)}
			}
			dirs[f.Name] = true
			continue
		case tar.TypeLink:
			if !ValidName(f.Linkname) {
				return &Error{pkgName, f.Name, fmt.Errorf("hardlink to %q: %w", f.Linkname, ErrMalicious)}
			}
			if !regs[f.Linkname] {
				return &Error{pkgName, f.Name, fmt.Errorf("hardlink to %q which is not an earlier file of the package: %w", f.Linkname, ErrMalicious)}
			}
		case tar.TypeSymlink:
			if f.Linkname == "" || strings.IndexByte(f.Linkname, 0) >= 0 {
				return &Error{pkgName, f.Name, fmt.Errorf("bad symlink target: %w", ErrMalicious)}
			}
			links[f.Name] = true
		case tar.TypeReg:
			regs[f.Name] = true
		}
		// A file whose directory the package does not declare could be reached through a
		// symlink the package itself planted; apk refuses it ("no dirent in archive").
		if !dirs[parent] {
			return &Error{pkgName, f.Name, fmt.Errorf("no directory entry for %q in archive: %w", parent, ErrMalicious)}
		}
		if regs[f.Name] && f.Type != tar.TypeReg {
			return &Error{pkgName, f.Name, fmt.Errorf("duplicate entry: %w", ErrMalicious)}
		}
	}
	return nil
}

// Install writes files (already verified by pkgstream) into the root. All names are checked
// first; on an error part of the package may have been written, and the caller must not record
// the package as installed.
func (x *Extractor) Install(pkgName string, files []pkgstream.File) (*Result, error) {
	return x.InstallStaged(pkgName, files, nil)
}

// InstallStaged is Install for a package some of whose regular files a decoder staged:
// staged[i] is file i's descriptor from Stage, or -1 (nil = none staged). Each is closed (and
// set to -1) as soon as its file is in place: a writable descriptor left open on an
// executable makes a script's exec of it fail (ETXTBSY). The caller closes what is left.
func (x *Extractor) InstallStaged(pkgName string, files []pkgstream.File, staged []int) (*Result, error) {
	if staged != nil && len(staged) != len(files) {
		return nil, &Error{pkgName, "", fmt.Errorf("%d staged descriptors for %d files", len(staged), len(files))}
	}
	if err := Check(pkgName, files); err != nil {
		return nil, err
	}
	w := &writer{x: x, pkg: pkgName, dirFDs: map[string]dirFD{}}
	defer w.close()
	res := &Result{}
	dirIdx := map[string]int{}
	sums := map[string][]byte{} // regular file checksums, for hardlinks (apk records the target's)
	for i := range files {
		f := &files[i]
		acl := ACL{UID: x.uid(f), GID: x.gid(f), Mode: f.Mode & 0o7777, XattrHash: xattrHash(f.Xattrs)}
		if f.Type == tar.TypeDir {
			created, existing, err := w.mkdir(f, acl)
			if err != nil {
				return nil, &Error{pkgName, f.Name, err}
			}
			if _, ok := dirIdx[f.Name]; !ok {
				dirIdx[f.Name] = len(res.Dirs)
				res.Dirs = append(res.Dirs, DirRecord{Name: f.Name, ACL: acl, Created: created, Existing: existing})
			}
			continue
		}
		sfd := -1
		if staged != nil {
			sfd = staged[i]
		}
		kept, brokenX, err := w.file(f, acl, sfd)
		if sfd >= 0 && err == nil {
			unix.Close(sfd)
			staged[i] = -1
		}
		if err != nil {
			// Don't leave a partial package behind (a full tmpfs is the usual cause): remove
			// what this package newly created. Replaced files cannot be brought back.
			w.undo()
			return nil, &Error{pkgName, f.Name, err}
		}
		res.BrokenXattrs = res.BrokenXattrs || brokenX
		sum := f.Checksum
		switch f.Type {
		case tar.TypeReg:
			sums[f.Name] = sum
		case tar.TypeLink:
			if sum == nil {
				sum = sums[f.Linkname]
			}
		}
		parent := path.Dir(f.Name)
		if parent == "." {
			parent = ""
		}
		di, ok := dirIdx[parent]
		if !ok { // root-level file: the root directory is implicit
			di = len(res.Dirs)
			dirIdx[parent] = di
			res.Dirs = append(res.Dirs, DirRecord{Name: parent, ACL: ACL{Mode: 0o755}})
		}
		res.Dirs[di].Files = append(res.Dirs[di].Files, FileRecord{Name: f.Name, ACL: acl, Checksum: sum, Kept: kept})
	}
	return res, nil
}

// SetDirACL applies final ownership and permissions to a directory (apk does this for all
// touched directories at the end of the commit, merging the ACLs of every owner).
func (x *Extractor) SetDirACL(name string, acl ACL) error {
	fd, err := x.openDir(name)
	if err != nil {
		return fmt.Errorf("directory %s: %w", name, err)
	}
	defer unix.Close(fd)
	// Most directories already are as declared (mkdir gave them their mode): nothing to do.
	var st unix.Stat_t
	if unix.Fstat(fd, &st) == nil && int(st.Uid) == acl.UID && int(st.Gid) == acl.GID && st.Mode&0o7777 == acl.Mode {
		return nil
	}
	p := fmt.Sprintf("/proc/self/fd/%d", fd)
	if err := unix.Fchownat(fd, "", acl.UID, acl.GID, unix.AT_EMPTY_PATH); err != nil {
		return fmt.Errorf("chown directory %s: %w", name, err)
	}
	// fchmod does not work on O_PATH descriptors; chmod through the magic link does.
	if err := unix.Chmod(p, acl.Mode); err != nil {
		return fmt.Errorf("chmod directory %s: %w", name, err)
	}
	return nil
}

// openDir opens a directory of the root (O_PATH), resolving symlinks inside the root only.
func (x *Extractor) openDir(name string) (int, error) {
	if name == "" {
		return unix.Dup(x.rootFD)
	}
	return unix.Openat2(x.rootFD, name, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
}

type writer struct {
	x       *Extractor
	pkg     string
	created []string // non-directories this package created (not replaced)
	dirFDs  map[string]dirFD
}

// dirFD is an open parent directory and its mode (for the setgid check).
type dirFD struct {
	fd   int
	mode uint32
}

func (w *writer) undo() {
	for i := len(w.created) - 1; i >= 0; i-- {
		if pfd, base, err := w.parent(w.created[i]); err == nil {
			unix.Unlinkat(pfd, base, 0)
		}
	}
	w.created = nil
}

func (w *writer) close() {
	for _, d := range w.dirFDs {
		unix.Close(d.fd)
	}
}

func (w *writer) parent(name string) (int, string, error) {
	d, base, err := w.parentDir(name)
	return d.fd, base, err
}

func (w *writer) parentDir(name string) (dirFD, string, error) {
	dir, base := path.Split(name)
	dir = strings.TrimSuffix(dir, "/")
	if d, ok := w.dirFDs[dir]; ok {
		return d, base, nil
	}
	fd, err := w.x.openDir(dir)
	if err != nil {
		return dirFD{fd: -1}, "", fmt.Errorf("open parent directory %q: %w", dir, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return dirFD{fd: -1}, "", fmt.Errorf("stat parent directory %q: %w", dir, err)
	}
	d := dirFD{fd: fd, mode: st.Mode}
	w.dirFDs[dir] = d
	return d, base, nil
}

func (w *writer) mkdir(f *pkgstream.File, acl ACL) (created bool, existing ACL, err error) {
	pd, base, err := w.parentDir(f.Name)
	if err != nil {
		return false, existing, err
	}
	pfd := pd.fd
	if !w.x.needChmod(acl) && !w.x.needChown(acl, pd.mode) {
		err = unix.Mkdirat(pfd, base, acl.Mode)
		if err == nil {
			return true, acl, nil
		}
	} else {
		err = unix.Mkdirat(pfd, base, 0o700)
	}
	if err == nil {
		fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return false, existing, fmt.Errorf("open new directory: %w", err)
		}
		defer unix.Close(fd)
		if err := unix.Fchown(fd, acl.UID, acl.GID); err != nil {
			return false, existing, fmt.Errorf("chown: %w", err)
		}
		if err := unix.Fchmod(fd, acl.Mode); err != nil {
			return false, existing, fmt.Errorf("chmod: %w", err)
		}
		return true, acl, nil
	}
	if !errors.Is(err, unix.EEXIST) {
		return false, existing, fmt.Errorf("mkdir: %w", err)
	}
	// Existing: must be a directory, or a symlink resolving (inside the root) to one.
	fd, err := w.x.openDir(f.Name)
	if err != nil {
		return false, existing, fmt.Errorf("exists and is not a directory: %w", err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return false, existing, fmt.Errorf("stat: %w", err)
	}
	return false, ACL{UID: int(st.Uid), GID: int(st.Gid), Mode: st.Mode & 0o7777}, nil
}

// tempName is where a non-directory is written when its final name already exists, so the
// replacement is atomic (apk's .apk.<hash> names).
func tempName(pkg, name string) string {
	s := sha256.Sum256([]byte(pkg + "\x00" + name))
	return ".apk." + hex.EncodeToString(s[:12])
}

func (w *writer) file(f *pkgstream.File, acl ACL, sfd int) (kept, brokenX bool, err error) {
	pd, base, err := w.parentDir(f.Name)
	if err != nil {
		return false, false, err
	}
	pfd := pd.fd
	brokenX, err = w.create(pd, base, f, acl, sfd)
	if err == nil {
		w.created = append(w.created, f.Name)
		return false, brokenX, nil
	}
	if !errors.Is(err, unix.EEXIST) {
		return false, false, err
	}
	if w.x.overlay[f.Name] {
		return true, false, nil // overlay wins
	}
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return false, false, errors.New("a directory exists at this path")
	}
	final := base
	if w.x.protected(f.Name, f.Type == tar.TypeSymlink) {
		disk := contentSum(pfd, base, &st)
		var recorded []byte
		if w.x.owned != nil {
			recorded = w.x.owned(f.Name)
		}
		if recorded == nil || !bytes.Equal(disk, recorded) {
			// Unowned or locally modified: keep the local file, as apk does.
			if bytes.Equal(disk, newSum(f)) || w.x.cleanProtected {
				return true, false, nil
			}
			final = base + ".apk-new"
		}
	}
	// Replace atomically: write a temporary name, rename over the final one.
	tmp := tempName(w.pkg, f.Name)
	unix.Unlinkat(pfd, tmp, 0) // stale from an interrupted run
	if brokenX, err = w.create(pd, tmp, f, acl, sfd); err != nil {
		unix.Unlinkat(pfd, tmp, 0)
		return false, false, err
	}
	if err := unix.Renameat(pfd, tmp, pfd, final); err != nil {
		unix.Unlinkat(pfd, tmp, 0)
		return false, false, fmt.Errorf("rename into place: %w", err)
	}
	return final != base, brokenX, nil
}

// newSum is the SHA-1 apk compares: the recorded checksum, else the content's or link target's.
func newSum(f *pkgstream.File) []byte {
	if f.Checksum != nil {
		return f.Checksum
	}
	return f.Sum()
}

// contentSum hashes what is on disk at name (nil for other file types or on error).
func contentSum(pfd int, name string, st *unix.Stat_t) []byte {
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFLNK:
		buf := make([]byte, 4096)
		n, err := unix.Readlinkat(pfd, name, buf)
		if err != nil {
			return nil
		}
		s := sha1.Sum(buf[:n])
		return s[:]
	case unix.S_IFREG:
		fd, err := unix.Openat(pfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil
		}
		f := os.NewFile(uintptr(fd), name)
		defer f.Close()
		h := sha1.New()
		if _, err := io.Copy(h, f); err != nil {
			return nil
		}
		return h.Sum(nil)
	}
	return nil
}

func unlinkTemp(pfd int, target, base string) {
	if target != base {
		unix.Unlinkat(pfd, target, 0)
	}
}

func (w *writer) create(pd dirFD, name string, f *pkgstream.File, acl ACL, sfd int) (brokenX bool, err error) {
	pfd := pd.fd
	switch f.Type {
	case tar.TypeReg:
		chown, chmod := w.x.needChown(acl, pd.mode), w.x.needChmod(acl)
		var fd int
		if sfd >= 0 {
			// Staged with the permission bits already (Stage): linked in, then the same
			// metadata as a file created here.
			var closeFD bool
			if fd, closeFD, err = linkStaged(sfd, pfd, name); err != nil {
				return false, err
			}
			if closeFD {
				defer unix.Close(fd)
				chmod = true
			}
		} else {
			createMode := uint32(0o600)
			if !chown && !chmod {
				createMode = acl.Mode
			}
			fd, err = unix.Openat(pfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, createMode)
			if err != nil {
				return false, err
			}
			defer unix.Close(fd)
			if err := writeAll(fd, f.Data, nil); err != nil {
				return false, err
			}
		}
		if chown {
			if err := unix.Fchown(fd, acl.UID, acl.GID); err != nil {
				return false, fmt.Errorf("chown: %w", err)
			}
		}
		// After chown, which clears setuid/setgid.
		if chown || chmod {
			if err := unix.Fchmod(fd, acl.Mode); err != nil {
				return false, fmt.Errorf("chmod: %w", err)
			}
		}
		for _, xa := range f.Xattrs {
			if err := unix.Fsetxattr(fd, xa.Name, xa.Value, 0); err != nil {
				brokenX = true
			}
		}
		ts := []unix.Timespec{unix.NsecToTimespec(f.ModTime.UnixNano()), unix.NsecToTimespec(f.ModTime.UnixNano())}
		if err := unix.UtimesNanoAt(fd, "", ts, unix.AT_EMPTY_PATH); err != nil {
			return brokenX, fmt.Errorf("set mtime: %w", err)
		}
		return brokenX, nil
	case tar.TypeSymlink:
		if err := unix.Symlinkat(f.Linkname, pfd, name); err != nil {
			return false, err
		}
		if !w.x.needChown(acl, pd.mode) {
			return false, nil
		}
		if err := unix.Fchownat(pfd, name, acl.UID, acl.GID, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return false, fmt.Errorf("chown: %w", err)
		}
		return false, nil
	case tar.TypeLink:
		spfd, sbase, err := w.parent(f.Linkname)
		if err != nil {
			return false, err
		}
		// Flags 0: never follow a symlink at the source; it is a file this package just wrote.
		return false, unix.Linkat(spfd, sbase, pfd, name, 0)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		mode := map[byte]uint32{tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[f.Type]
		if err := unix.Mknodat(pfd, name, mode|0o600, int(unix.Mkdev(f.Devmajor, f.Devminor))); err != nil {
			return false, err
		}
		if err := unix.Fchownat(pfd, name, acl.UID, acl.GID, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return false, fmt.Errorf("chown: %w", err)
		}
		if err := unix.Fchmodat(pfd, name, acl.Mode, 0); err != nil {
			return false, fmt.Errorf("chmod: %w", err)
		}
		return false, nil
	}
	return false, fmt.Errorf("unsupported entry type %q", f.Type)
}

// xattrHash is apk's apk_fileinfo_hash_xattr_array: SHA-1 over the name-sorted xattrs, each as
// be32(len(name)) name be32(len(value)) value.
func xattrHash(xs []pkgstream.Xattr) []byte {
	if len(xs) == 0 {
		return nil
	}
	var b bytes.Buffer
	for _, x := range xs {
		binary.Write(&b, binary.BigEndian, uint32(len(x.Name)))
		b.WriteString(x.Name)
		binary.Write(&b, binary.BigEndian, uint32(len(x.Value)))
		b.Write(x.Value)
	}
	s := sha1.Sum(b.Bytes())
	return s[:]
}
