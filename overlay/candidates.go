// Package overlay finds, selects, decrypts and restores Alpine configuration overlays
// (HOST.apkovl.tar.gz[.CIPHER]) into a new root, the way Alpine's initramfs does, but safely:
// nothing lands outside the root, device nodes are refused and the size is bounded.
package overlay

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Suffix is the part of an overlay's file name after the host name.
const Suffix = ".apkovl.tar.gz"

// Candidate is one overlay file found at the top of a boot medium.
type Candidate struct {
	Path      string    // full path of the file
	Media     string    // the directory it was found in (mount point of the medium)
	Name      string    // host part of the name: "foo" for foo.apkovl.tar.gz
	Encrypted bool      // name ends in .apkovl.tar.gz.CIPHER
	Cipher    string    // openssl cipher name ("aes-256-cbc") when Encrypted
	ModTime   time.Time // modification time of the file
}

// The name matchers below are plain code, not regexps or map literals: PID 1 would compile and
// build those at start-up on every boot (about 7 ms under QEMU TCG).

// isCipherName reports whether c looks like an openssl cipher name, [a-z][a-z0-9]*(-[a-z0-9]+)*;
// anything else after .apkovl.tar.gz is an editor/backup/temporary leftover.
func isCipherName(c string) bool {
	if c == "" || c[0] < 'a' || c[0] > 'z' || c[len(c)-1] == '-' {
		return false
	}
	for i := 1; i < len(c); i++ {
		switch b := c[i]; {
		case b >= 'a' && b <= 'z', b >= '0' && b <= '9':
		case b == '-' && c[i-1] != '-':
		default:
			return false
		}
	}
	return true
}

// isTempSuffix reports suffixes that are never ciphers. Alpine's lbu writes
// HOST.apkovl.tar.gz.new and its initramfs then fails with "Cipher new is not supported"; we
// skip such files instead.
func isTempSuffix(s string) bool {
	switch s {
	case "new", "tmp", "temp", "old", "bak", "orig", "part", "swp", "save", "partial", "lock":
		return true
	}
	return false
}

// ParseName splits a file name into host name and cipher. ok is false when the name is not an
// overlay (wrong pattern, hidden file, temporary leftover); why then says why.
func ParseName(name string) (host, cipher string, ok bool, why string) {
	i := strings.Index(name, Suffix)
	if i < 0 {
		return "", "", false, "not an apkovl name"
	}
	if strings.HasPrefix(name, ".") {
		// Hidden files include lbu's own temporary names; never boot from them.
		return "", "", false, "hidden file (temporary or metadata)"
	}
	if i == 0 {
		return "", "", false, "empty host name"
	}
	host, rest := name[:i], name[i+len(Suffix):]
	if rest == "" {
		return host, "", true, ""
	}
	if rest[0] != '.' {
		return "", "", false, fmt.Sprintf("unexpected suffix %q after %s", rest, Suffix)
	}
	c := rest[1:]
	if isTempSuffix(c) || !isCipherName(c) {
		return "", "", false, fmt.Sprintf("leftover temporary file (suffix %q is not a cipher)", c)
	}
	return host, c, true, ""
}

// Scan lists the top-level regular files of mediaDir whose names match *.apkovl.tar.gz* (the
// pattern Alpine's nlplug-findfs uses). Proper overlays are returned sorted by file name;
// everything that matched the pattern but is not an overlay, and lbu's temporary files
// (.lbu-*.tmp, left by an interrupted commit), are described in ignored, sorted.
func Scan(mediaDir string) (cands []Candidate, ignored []string, err error) {
	ents, err := os.ReadDir(mediaDir)
	if err != nil {
		return nil, nil, fmt.Errorf("scan for apkovl in %s: %w", mediaDir, err)
	}
	for _, e := range ents {
		name := e.Name()
		if !strings.Contains(name, Suffix) {
			if strings.HasPrefix(name, ".lbu-") && strings.HasSuffix(name, ".tmp") {
				ignored = append(ignored, fmt.Sprintf("%s: ignored: temporary file of an interrupted lbu commit", filepath.Join(mediaDir, name)))
			}
			continue
		}
		p := filepath.Join(mediaDir, name)
		host, cipher, ok, why := ParseName(name)
		if !ok {
			ignored = append(ignored, fmt.Sprintf("%s: ignored: %s", p, why))
			continue
		}
		if !e.Type().IsRegular() {
			ignored = append(ignored, fmt.Sprintf("%s: ignored: not a regular file", p))
			continue
		}
		info, err := e.Info()
		if err != nil {
			ignored = append(ignored, fmt.Sprintf("%s: ignored: %v", p, err))
			continue
		}
		cands = append(cands, Candidate{
			Path: p, Media: mediaDir, Name: host,
			Encrypted: cipher != "", Cipher: cipher, ModTime: info.ModTime(),
		})
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].Path < cands[j].Path })
	sort.Strings(ignored)
	return cands, ignored, nil
}

// FindCandidates returns the overlays at the top of mediaDir (see Scan); temporary and
// leftover files are never returned.
func FindCandidates(mediaDir string) ([]Candidate, error) {
	c, _, err := Scan(mediaDir)
	return c, err
}

// Choose picks one overlay deterministically, independent of discovery order:
//  1. overlays with an unsupported cipher are never chosen;
//  2. an overlay named after hostname (when hostname is not empty) beats the others;
//  3. then the newest modification time;
//  4. then the smallest path.
//
// Every candidate gets one log line saying whether and why it was chosen.
func Choose(cands []Candidate, hostname string) (best *Candidate, log []string) {
	var usable []Candidate
	for _, c := range cands {
		if c.Encrypted && !CipherSupported(c.Cipher) {
			log = append(log, fmt.Sprintf("apkovl candidate %s: skipped: cipher %q is not supported", c.Path, c.Cipher))
			continue
		}
		usable = append(usable, c)
	}
	if len(usable) == 0 {
		if len(cands) == 0 {
			log = append(log, "apkovl: no candidates")
		}
		return nil, log
	}
	better := func(a, b Candidate) bool {
		if hostname != "" && (a.Name == hostname) != (b.Name == hostname) {
			return a.Name == hostname
		}
		if !a.ModTime.Equal(b.ModTime) {
			return a.ModTime.After(b.ModTime)
		}
		return a.Path < b.Path
	}
	sort.SliceStable(usable, func(i, j int) bool { return better(usable[i], usable[j]) })
	w := usable[0]
	for i, c := range usable {
		desc := fmt.Sprintf("apkovl candidate %s (host %q, %s, modified %s)", c.Path, c.Name, kind(c), c.ModTime.UTC().Format(time.RFC3339))
		switch {
		case i == 0 && len(usable) == 1:
			log = append(log, desc+": chosen (only candidate)")
		case i == 0 && hostname != "" && c.Name == hostname && usable[1].Name != hostname:
			log = append(log, desc+": chosen (matches hostname "+hostname+")")
		case i == 0:
			log = append(log, desc+": chosen (newest, then first by path)")
		case hostname != "" && w.Name == hostname && c.Name != hostname:
			log = append(log, desc+": not chosen (does not match hostname "+hostname+")")
		case !c.ModTime.Equal(w.ModTime):
			log = append(log, desc+": not chosen (older than "+w.Path+")")
		default:
			log = append(log, desc+": not chosen (same age, sorts after "+w.Path+")")
		}
	}
	return &w, log
}

func kind(c Candidate) string {
	if c.Encrypted {
		return "encrypted " + c.Cipher
	}
	return "plain"
}

// ParseBackupName returns the host and timestamp of an lbu backup file name,
// HOST.YYYYMMDDhhmmss.tar.gz[.CIPHER] with CIPHER in [a-z0-9-]+.
func ParseBackupName(name string) (host, stamp string, ok bool) {
	if strings.HasPrefix(name, ".") {
		return "", "", false
	}
	base := name
	if !strings.HasSuffix(base, ".tar.gz") {
		i := strings.LastIndexByte(base, '.')
		if i < 0 || !isBackupCipher(base[i+1:]) || isTempSuffix(base[i+1:]) {
			return "", "", false
		}
		base = base[:i]
	}
	base, found := strings.CutSuffix(base, ".tar.gz")
	const n = len("YYYYMMDDhhmmss")
	if !found || len(base) < n+2 || base[len(base)-n-1] != '.' {
		return "", "", false
	}
	host, stamp = base[:len(base)-n-1], base[len(base)-n:]
	for i := 0; i < n; i++ {
		if stamp[i] < '0' || stamp[i] > '9' {
			return "", "", false
		}
	}
	return host, stamp, true
}

// isBackupCipher is the cipher part of a backup name: [a-z0-9-]+.
func isBackupCipher(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; !(b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '-') {
			return false
		}
	}
	return s != ""
}

// Backups returns the lbu backups of host in mediaDir (HOST.YYYYMMDDhhmmss.tar.gz[.CIPHER]),
// newest first: the fallback chain when the current overlay cannot be restored.
func Backups(mediaDir, host string) ([]string, error) {
	ents, err := os.ReadDir(mediaDir)
	if err != nil {
		return nil, fmt.Errorf("list apkovl backups in %s: %w", mediaDir, err)
	}
	type bk struct{ path, stamp string }
	var bs []bk
	for _, e := range ents {
		h, stamp, ok := ParseBackupName(e.Name())
		if !ok || h != host || !e.Type().IsRegular() {
			continue
		}
		bs = append(bs, bk{filepath.Join(mediaDir, e.Name()), stamp})
	}
	sort.Slice(bs, func(i, j int) bool {
		if bs[i].stamp != bs[j].stamp {
			return bs[i].stamp > bs[j].stamp
		}
		return bs[i].path < bs[j].path
	})
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.path
	}
	return out, nil
}
