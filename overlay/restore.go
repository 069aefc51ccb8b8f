package overlay

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ramboot/ramboot/internal/apkarch"
	"github.com/ramboot/ramboot/internal/passwd"
)

// Restore extracts the overlay at ovlPath into root the way Alpine's initramfs does
// (`tar -C root -zxf`: leading "./" and "/" dropped, missing parents created 0755 root, existing
// files replaced, modes, owners and mtimes restored, macOS "._*" files extracted like any file),
// then applies Alpine's fixes (chmod 700 /root; etc/apk/arch rewritten to the running arch).
//
// Safety beyond Alpine: the whole archive is decrypted and verified (gzip CRC, tar structure,
// size bound) before anything is written, so a wrong password or a corrupt file extracts
// nothing; every path is resolved component by component without following symlinks, so no
// entry lands outside root ("..", symlinked parents); hardlinks may only point at files this
// overlay placed; device nodes and FIFOs are refused; the root directory's own owner and mode
// are not changed. Refused entries are listed in the result, they do not fail the restore.
//
// Owners: names are mapped through root's etc/passwd and etc/group as they are before the
// restore (falling back to the numeric ids, like busybox tar); encrypted overlays use numeric
// ids, as Alpine's `tar --numeric-owner` does for them.
func Restore(ovlPath, root string, opts RestoreOptions) (*RestoreResult, error) {
	gz, digest, err := Load(ovlPath, opts)
	if err != nil {
		return nil, err
	}
	// Pass 1: verify everything before touching the root.
	if err := WalkTar(gz, opts.maxBytes(), nil); err != nil {
		return nil, fmt.Errorf("apkovl %s: %w", ovlPath, err)
	}
	rootFD, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("restore apkovl into %s: %w", root, err)
	}
	defer unix.Close(rootFD)
	x := &extractor{
		root:     root,
		rootFD:   rootFD,
		res:      &RestoreResult{Digest: digest},
		placed:   map[string]bool{},
		files:    map[string]bool{},
		dirTimes: map[string]time.Time{},
		numeric:  CipherOf(ovlPath) != "",
	}
	if !x.numeric {
		x.users = x.readIDs("etc/passwd")
		x.groups = x.readIDs("etc/group")
	}
	// Pass 2: extract.
	if err := WalkTar(gz, opts.maxBytes(), x.entry); err != nil {
		return x.res, fmt.Errorf("apkovl %s: extract into %s: %w", ovlPath, root, err)
	}
	x.applyDirTimes()
	if err := x.fixups(opts.Arch); err != nil {
		return x.res, fmt.Errorf("apkovl %s: %w", ovlPath, err)
	}
	return x.res, nil
}

type extractor struct {
	root          string
	rootFD        int
	res           *RestoreResult
	placed        map[string]bool // every path in res.Placed
	files         map[string]bool // regular files placed: valid hardlink targets
	dirTimes      map[string]time.Time
	dirOrder      []string
	numeric       bool
	users, groups map[string]int
}

// refusal is an entry safety refuses; it is reported, not fatal.
type refusal struct{ reason string }

func (r *refusal) Error() string { return r.reason }

func refuse(format string, a ...any) error { return &refusal{fmt.Sprintf(format, a...)} }

// cleanName turns a member name into a clean root-relative path ("." for the root itself), or
// a refusal. Leading "/" is dropped like busybox tar does; ".." anywhere is refused.
func cleanName(name string) (string, error) {
	n := strings.TrimLeft(name, "/")
	for _, c := range strings.Split(n, "/") {
		if c == ".." {
			return "", refuse("name contains \"..\"")
		}
	}
	n = path.Clean("/" + n)[1:]
	if n == "" {
		return ".", nil
	}
	return n, nil
}

func (x *extractor) entry(hdr *tar.Header, r io.Reader) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	name, err := cleanName(hdr.Name)
	if err == nil {
		err = x.place(name, hdr, r)
	}
	var rf *refusal
	if errors.As(err, &rf) {
		shown := strings.TrimPrefix(hdr.Name, "./")
		if shown == "" {
			shown = hdr.Name
		}
		x.res.Refused = append(x.res.Refused, shown+": "+rf.reason)
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", hdr.Name, err)
	}
	if name != "." && !x.placed[name] {
		x.placed[name] = true
		x.res.Placed = append(x.res.Placed, name)
	}
	return nil
}

func (x *extractor) owner(hdr *tar.Header) (int, int) {
	uid, gid := hdr.Uid, hdr.Gid
	if !x.numeric {
		if id, ok := x.users[hdr.Uname]; ok && hdr.Uname != "" {
			uid = id
		}
		if id, ok := x.groups[hdr.Gname]; ok && hdr.Gname != "" {
			gid = id
		}
	}
	return uid, gid
}

func (x *extractor) place(name string, hdr *tar.Header, r io.Reader) error {
	mode := uint32(hdr.Mode) & 07777
	uid, gid := x.owner(hdr)
	if name == "." {
		if hdr.Typeflag != tar.TypeDir {
			return refuse("entry for the root directory is not a directory")
		}
		var st unix.Stat_t
		if err := unix.Fstat(x.rootFD, &st); err != nil {
			return err
		}
		if int(st.Uid) != uid || int(st.Gid) != gid || st.Mode&07777 != mode {
			return refuse("owner %d:%d and mode %04o of the root directory itself are not applied", uid, gid, mode)
		}
		return nil
	}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeRegA, tar.TypeDir, tar.TypeSymlink, tar.TypeLink:
	case tar.TypeChar, tar.TypeBlock:
		return refuse("device node refused")
	case tar.TypeFifo:
		return refuse("FIFO refused")
	default:
		return refuse("unsupported entry type %q", hdr.Typeflag)
	}
	dfd, base, err := x.openParent(name, true)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	mtime := unix.NsecToTimespec(hdr.ModTime.UnixNano())
	times := []unix.Timespec{mtime, mtime}

	switch hdr.Typeflag {
	case tar.TypeDir:
		delete(x.files, name)
		if err := unix.Mkdirat(dfd, base, 0700); err != nil {
			if err != unix.EEXIST {
				return fmt.Errorf("mkdir: %w", err)
			}
			var st unix.Stat_t
			if err := unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return err
			}
			if st.Mode&unix.S_IFMT != unix.S_IFDIR {
				// Replace a file or symlink by the directory (busybox would follow a symlink).
				if err := unix.Unlinkat(dfd, base, 0); err != nil {
					return fmt.Errorf("replace non-directory: %w", err)
				}
				if err := unix.Mkdirat(dfd, base, 0700); err != nil {
					return fmt.Errorf("mkdir: %w", err)
				}
			}
		}
		fd, err := unix.Openat(dfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open directory: %w", err)
		}
		defer unix.Close(fd)
		if err := unix.Fchown(fd, uid, gid); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
		if err := unix.Fchmod(fd, mode); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
		// Directory mtimes are applied at the end: later entries would change them again.
		if _, ok := x.dirTimes[name]; !ok {
			x.dirOrder = append(x.dirOrder, name)
		}
		x.dirTimes[name] = hdr.ModTime
		return nil

	case tar.TypeSymlink:
		delete(x.files, name)
		if err := unlinkOld(dfd, base); err != nil {
			return err
		}
		if err := unix.Symlinkat(hdr.Linkname, dfd, base); err != nil {
			return fmt.Errorf("symlink: %w", err)
		}
		// Like busybox tar, symlinks keep the extractor's owner (root) and the current time.
		return nil

	case tar.TypeLink:
		target, err := cleanName(hdr.Linkname)
		if err != nil {
			return refuse("hardlink target %q: %v", hdr.Linkname, err)
		}
		if !x.files[target] {
			return refuse("hardlink to %q, which is not a regular file placed by this overlay", hdr.Linkname)
		}
		tfd, tbase, err := x.openParent(target, false)
		if err != nil {
			return refuse("hardlink target %q: %v", hdr.Linkname, err)
		}
		defer unix.Close(tfd)
		if err := unlinkOld(dfd, base); err != nil {
			return err
		}
		if err := unix.Linkat(tfd, tbase, dfd, base, 0); err != nil {
			return fmt.Errorf("hardlink: %w", err)
		}
		x.files[name] = true
		return nil
	}

	// Regular file.
	if err := unlinkOld(dfd, base); err != nil {
		return err
	}
	fd, err := unix.Openat(dfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0600)
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	if _, err := io.Copy(f, r); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	// chown before chmod: chown clears set-id bits.
	if err := f.Chown(uid, gid); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	if err := unix.Fchmod(fd, mode); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	if err := unix.UtimesNanoAt(dfd, base, times, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set time: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	x.files[name] = true
	return nil
}

// unlinkOld removes what is at base so the entry replaces it (busybox ARCHIVE_UNLINK_OLD);
// a non-empty directory is refused rather than deleted recursively.
func unlinkOld(dfd int, base string) error {
	err := unix.Unlinkat(dfd, base, 0)
	if err == nil || err == unix.ENOENT {
		return nil
	}
	if err == unix.EISDIR || err == unix.EPERM {
		if err := unix.Unlinkat(dfd, base, unix.AT_REMOVEDIR); err != nil {
			return refuse("a directory is in the way: %v", err)
		}
		return nil
	}
	return fmt.Errorf("remove old: %w", err)
}

// openParent opens the directory that will hold name, walking from the root one component at a
// time with O_NOFOLLOW so that a symlink (placed by the overlay or already in the root) can
// never redirect an entry outside the root. Missing parents are created 0755 root:root when
// create is set, like busybox tar's leading-directory creation.
func (x *extractor) openParent(name string, create bool) (int, string, error) {
	comps := strings.Split(name, "/")
	fd, err := unix.Dup(x.rootFD)
	if err != nil {
		return -1, "", err
	}
	for i, c := range comps[:len(comps)-1] {
		nfd, err := unix.Openat(fd, c, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err == unix.ENOENT && create {
			if err := unix.Mkdirat(fd, c, 0755); err != nil && err != unix.EEXIST {
				unix.Close(fd)
				return -1, "", fmt.Errorf("create parent %s: %w", strings.Join(comps[:i+1], "/"), err)
			}
			_ = unix.Fchownat(fd, c, 0, 0, unix.AT_SYMLINK_NOFOLLOW)
			nfd, err = unix.Openat(fd, c, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		}
		unix.Close(fd)
		if err == unix.ELOOP || err == unix.ENOTDIR {
			return -1, "", refuse("parent %s is a symlink or not a directory", strings.Join(comps[:i+1], "/"))
		}
		if err != nil {
			return -1, "", fmt.Errorf("open parent %s: %w", strings.Join(comps[:i+1], "/"), err)
		}
		fd = nfd
	}
	return fd, comps[len(comps)-1], nil
}

func (x *extractor) applyDirTimes() {
	for _, d := range x.dirOrder {
		fd, base, err := x.openParent(d, false)
		if err != nil {
			continue
		}
		t := unix.NsecToTimespec(x.dirTimes[d].UnixNano())
		_ = unix.UtimesNanoAt(fd, base, []unix.Timespec{t, t}, unix.AT_SYMLINK_NOFOLLOW)
		unix.Close(fd)
	}
}

// readIDs parses ROOT/etc/passwd or ROOT/etc/group (name → id), safely beneath the root.
// A missing or unreadable file gives an empty map: owners then stay numeric.
func (x *extractor) readIDs(rel string) map[string]int {
	fd, base, err := x.openParent(rel, false)
	if err != nil {
		return map[string]int{}
	}
	defer unix.Close(fd)
	ffd, err := unix.Openat(fd, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return map[string]int{}
	}
	f := os.NewFile(uintptr(ffd), rel)
	defer f.Close()
	return passwd.ParseIDs(f)
}

// fixups applies what Alpine's initramfs does right after unpacking: chmod 700 /root (unlisted
// parents of /root/.ssh come out 0755) and rewriting an overlay-provided etc/apk/arch.
func (x *extractor) fixups(arch string) error {
	if fd, err := unix.Openat(x.rootFD, "root", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0); err == nil {
		err := unix.Fchmod(fd, 0700)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("chmod 700 /root: %w", err)
		}
	}
	if !x.files["etc/apk/arch"] {
		return nil
	}
	if arch == "" {
		arch = apkarch.Runtime()
	}
	dfd, base, err := x.openParent("etc/apk/arch", false)
	if err != nil {
		return fmt.Errorf("fix etc/apk/arch: %w", err)
	}
	defer unix.Close(dfd)
	fd, err := unix.Openat(dfd, base, unix.O_WRONLY|unix.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("fix etc/apk/arch: %w", err)
	}
	f := os.NewFile(uintptr(fd), "etc/apk/arch")
	defer f.Close()
	if _, err := f.WriteString(arch + "\n"); err != nil {
		return fmt.Errorf("fix etc/apk/arch: %w", err)
	}
	return f.Close()
}
