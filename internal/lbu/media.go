package lbu

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// writeFileAtomic writes data to path via a temporary file in the same directory, fsync,
// rename and directory fsync.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".lbu-*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	ok = true
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// mountInfo is one line of /proc/self/mountinfo.
type mountInfo struct {
	mountPoint string
	opts       map[string]bool // per-mount options (ro, nosuid, ...)
	superOpts  string
	fstype     string
	source     string
}

// findMount returns the mount whose mount point is exactly dir (the last one wins: stacked
// mounts), or nil.
func findMount(dir string) (*mountInfo, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	defer f.Close()
	var found *mountInfo
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		sep := -1
		for i, x := range fs {
			if x == "-" {
				sep = i
				break
			}
		}
		if len(fs) < 6 || sep < 0 || sep+3 > len(fs) {
			continue
		}
		if unescapeMount(fs[4]) != dir {
			continue
		}
		m := &mountInfo{mountPoint: dir, opts: map[string]bool{}, fstype: fs[sep+1], source: fs[sep+2]}
		if sep+3 < len(fs) {
			m.superOpts = fs[sep+3]
		}
		for _, o := range strings.Split(fs[5], ",") {
			m.opts[o] = true
		}
		found = m
	}
	return found, sc.Err()
}

func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &v); err == nil {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func superReadOnly(m *mountInfo) bool {
	for _, o := range strings.Split(m.superOpts, ",") {
		if o == "ro" {
			return true
		}
	}
	return false
}

// perMountFlags keeps a mount's own flags across a remount (a remount resets those not given).
func perMountFlags(m *mountInfo) uintptr {
	var fl uintptr
	for o, bit := range map[string]uintptr{
		"nosuid": unix.MS_NOSUID, "nodev": unix.MS_NODEV, "noexec": unix.MS_NOEXEC,
		"noatime": unix.MS_NOATIME, "nodiratime": unix.MS_NODIRATIME, "relatime": unix.MS_RELATIME,
	} {
		if m.opts[o] {
			fl |= bit
		}
	}
	return fl
}

// mediaSession makes a medium writable for the duration of a commit and restores it after:
// a read-only mount is remounted read-write and back; an unmounted medium with an fstab entry
// is mounted (by the mount command, like lbu) and unmounted after.
type mediaSession struct {
	dir        string
	remountRO  bool
	bindOnly   bool
	unmount    bool
	perMountFl uintptr
	log        func(string)
}

// openMedia prepares dir for writing. root is the system root (fstab lookup); needMount false
// means LBU_BACKUPDIR semantics: a plain directory, nothing is mounted.
func openMedia(root, dir string, needMount, write bool, log func(string)) (*mediaSession, error) {
	s := &mediaSession{dir: dir, log: log}
	info, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("medium %s: %w", dir, err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("medium %s: not a directory", dir)
	}
	if !needMount {
		return s, nil
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, fmt.Errorf("medium %s: %w", dir, err)
	}
	m, err := findMount(real)
	if err != nil {
		return nil, fmt.Errorf("medium %s: %w", dir, err)
	}
	if m == nil {
		if !hasFstabEntry(root, dir) {
			return nil, fmt.Errorf("medium %s is not mounted (vanished?) and has no fstab entry: nothing written", dir)
		}
		if out, err := exec.Command("mount", dir).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("medium %s: mount: %v: %s", dir, err, strings.TrimSpace(string(out)))
		}
		s.unmount = true
		if m, err = findMount(real); err != nil || m == nil {
			s.close()
			return nil, fmt.Errorf("medium %s: not mounted after mount", dir)
		}
	}
	// An unplugged medium stays in the mount table while its device node is gone: fail at once
	// with a clear message instead of running into I/O errors (or worse) on a dead device.
	if strings.HasPrefix(m.source, "/") {
		if _, err := os.Stat(m.source); os.IsNotExist(err) {
			s.close()
			return nil, fmt.Errorf("medium %s: its device %s is gone (unplugged?): nothing written", dir, m.source)
		}
	}
	if write && m.opts["ro"] {
		s.perMountFl = perMountFlags(m)
		// A read-only superblock (the usual ro mount) is remounted as a whole; a read-only bind
		// of a writable filesystem only gets its per-mount flag changed, and is restored alike.
		s.bindOnly = !superReadOnly(m)
		fl := unix.MS_REMOUNT | s.perMountFl
		if s.bindOnly {
			fl |= unix.MS_BIND
		}
		if err := unix.Mount("", real, "", fl, ""); err != nil {
			s.close()
			return nil, fmt.Errorf("medium %s: remount read-write: %w", dir, err)
		}
		s.remountRO = true
		if s.log != nil {
			s.log("remounted " + dir + " read-write")
		}
	}
	return s, nil
}

// close flushes the medium and restores its previous state.
func (s *mediaSession) close() error {
	var first error
	if s.remountRO || s.unmount {
		if fd, err := unix.Open(s.dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
			unix.Syncfs(fd)
			unix.Close(fd)
		}
	}
	if s.remountRO {
		var err error
		// EBUSY can happen briefly while the kernel finishes writeback; retry a little.
		for i := 0; i < 20; i++ {
			fl := unix.MS_REMOUNT | unix.MS_RDONLY | s.perMountFl
			if s.bindOnly {
				fl |= unix.MS_BIND
			}
			if err = unix.Mount("", s.dir, "", uintptr(fl), ""); err != unix.EBUSY {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			first = fmt.Errorf("medium %s: remount read-only: %w", s.dir, err)
		} else if s.log != nil {
			s.log("remounted " + s.dir + " read-only")
		}
		s.remountRO = false
	}
	if s.unmount {
		if err := unix.Unmount(s.dir, 0); err != nil && first == nil {
			first = fmt.Errorf("medium %s: unmount: %w", s.dir, err)
		}
		s.unmount = false
	}
	return first
}

// hasFstabEntry reports whether ROOT/etc/fstab mounts something at dir. Only for the running
// system (root "/"): lbu never mounts on behalf of another root.
func hasFstabEntry(root, dir string) bool {
	if root != "/" {
		return false
	}
	data, err := os.ReadFile("/etc/fstab")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(data), "\n") {
		fs := strings.Fields(l)
		if len(fs) >= 2 && !strings.HasPrefix(fs[0], "#") && strings.TrimRight(fs[1], "/") == strings.TrimRight(dir, "/") {
			return true
		}
	}
	return false
}

// lockDir takes an exclusive flock on dir (serialising concurrent lbu runs on one medium),
// waiting at most timeout.
func lockDir(dir string, timeout time.Duration) (func(), error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("medium %s: %w", dir, err)
	}
	deadline := time.Now().Add(timeout)
	for {
		err = unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { unix.Flock(fd, unix.LOCK_UN); unix.Close(fd) }, nil
		}
		if err != unix.EWOULDBLOCK || time.Now().After(deadline) {
			unix.Close(fd)
			if err == unix.EWOULDBLOCK {
				return nil, fmt.Errorf("lock %s: another lbu is running (waited %s)", dir, timeout)
			}
			return nil, fmt.Errorf("lock %s: %w", dir, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
