// Package tmpfs computes the options of ramboot's tmpfs root: Alpine's "mode=0755" plus
// rootflags= (or the deprecated root_size=), or the options of the "/" line of an overlay's
// etc/fstab. It validates them before the kernel sees them, so a typo is reported by name
// instead of as a bare EINVAL from mount(2).
package tmpfs

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Mount flags (Linux values) that may appear in an option list.
const (
	msRdonly      = 0x1
	msNosuid      = 0x2
	msNodev       = 0x4
	msNoexec      = 0x8
	msSynchronous = 0x10
	msNoatime     = 0x400
	msNodiratime  = 0x800
	msRelatime    = 0x200000
	msStrictatime = 0x1000000
)

var flagOpts = map[string]uintptr{
	"ro": msRdonly, "nosuid": msNosuid, "nodev": msNodev, "noexec": msNoexec, "sync": msSynchronous,
	"noatime": msNoatime, "nodiratime": msNodiratime, "relatime": msRelatime, "strictatime": msStrictatime,
}

// Options accepted and handled by fstab/mount but meaningless to the kernel.
var ignoredOpts = map[string]bool{
	"rw": true, "defaults": true, "auto": true, "noauto": true, "suid": true, "dev": true, "exec": true,
	"async": true, "atime": true, "nouser": true, "user": true, "users": true, "nofail": true,
	"remount": true,
}

// Options returns the mount flags and the tmpfs data string for the root: "mode=0755", then
// size=root_size (deprecated), then rootflags. Later keys override earlier ones (mode, size…).
func Options(rootflags, rootSize string) (uintptr, string, error) {
	type kv struct{ k, v string }
	var data []kv
	var flags uintptr
	set := func(k, v string) {
		for i := range data {
			if data[i].k == k {
				data[i].v = v
				return
			}
		}
		data = append(data, kv{k, v})
	}
	set("mode", "0755")
	if rootSize != "" {
		if err := checkSize(rootSize); err != nil {
			return 0, "", fmt.Errorf("root_size=%s: %w", rootSize, err)
		}
		set("size", rootSize)
	}
	for _, o := range strings.Split(rootflags, ",") {
		o = strings.TrimSpace(o)
		if o == "" || ignoredOpts[o] {
			continue
		}
		if f, ok := flagOpts[o]; ok {
			flags |= f
			continue
		}
		k, v, hasV := strings.Cut(o, "=")
		if err := checkOpt(k, v, hasV); err != nil {
			return 0, "", fmt.Errorf("rootflags option %q: %w", o, err)
		}
		set(k, v)
	}
	parts := make([]string, 0, len(data))
	for _, d := range data {
		parts = append(parts, d.k+"="+d.v)
	}
	return flags, strings.Join(parts, ","), nil
}

func checkOpt(k, v string, hasV bool) error {
	if !hasV && k != "noswap" {
		return errors.New("unknown tmpfs option")
	}
	switch k {
	case "size":
		return checkSize(v)
	case "nr_blocks", "nr_inodes":
		return checkNumber(v, false)
	case "mode":
		if _, err := strconv.ParseUint(v, 8, 32); err != nil || len(v) > 4 {
			return fmt.Errorf("mode %q is not an octal permission", v)
		}
	case "uid", "gid":
		if _, err := strconv.ParseUint(v, 10, 32); err != nil {
			return fmt.Errorf("%s %q is not a number", k, v)
		}
	case "huge":
		switch v {
		case "never", "always", "within_size", "advise", "deny", "force":
		default:
			return fmt.Errorf("huge=%s: want never, always, within_size or advise", v)
		}
	case "mpol", "inode32", "inode64", "noswap":
	default:
		return errors.New("unknown tmpfs option")
	}
	return nil
}

// checkSize accepts what the kernel's tmpfs accepts for size=: a number with an optional
// k/m/g/t/p/e suffix, or a percentage of RAM.
func checkSize(v string) error { return checkNumber(v, true) }

func checkNumber(v string, percent bool) error {
	s := v
	switch {
	case percent && strings.HasSuffix(s, "%"):
		s = strings.TrimSuffix(s, "%")
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n == 0 {
			return fmt.Errorf("size %q: want a percentage of RAM such as 50%%", v)
		}
		return nil
	case len(s) > 0 && strings.ContainsRune("kKmMgGtTpPeE", rune(s[len(s)-1])):
		s = s[:len(s)-1]
	}
	if _, err := strconv.ParseUint(s, 10, 64); err != nil {
		return fmt.Errorf("%q: want a number with an optional k, m or g suffix", v)
	}
	return nil
}

// FromFstab returns the options of a tmpfs line for "/" in an fstab (an overlay's etc/fstab can
// size the root: "tmpfs / tmpfs rw,size=512m 0 0"). ok is false when there is no such line or
// no file.
func FromFstab(path string) (opts string, ok bool, err error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("fstab: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		if fields[1] == "/" && fields[2] == "tmpfs" {
			if len(fields) < 4 {
				return "defaults", true, nil
			}
			return fields[3], true, nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", false, fmt.Errorf("fstab %s: %w", path, err)
	}
	return "", false, nil
}
