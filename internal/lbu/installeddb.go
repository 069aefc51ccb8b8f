package lbu

import (
	"bufio"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// This is a small private reader of apk's installed database (lib/apk/db/installed), limited
// to what change detection needs: which package owns each directory and file, their recorded
// modes/owners (M:, a:) and content checksums (Z:). The full reader/writer belongs to
// internal/apkinstall/db; this one exists so lbu does not depend on its progress.

// acl is a recorded owner and mode.
type acl struct {
	uid, gid int
	mode     uint32 // permission bits (07777)
}

// Defaults apk 2 applies when a record has no M:/a: line (checked against real apk audit).
var (
	defaultDirACL  = acl{0, 0, 0755}
	defaultFileACL = acl{0, 0, 0644}
)

type dbFile struct {
	pkg  string
	acl  acl
	csum []byte // raw digest; nil when the db has none
	alg  string // "sha1" (Q1) or "sha256" (Q2)
}

type dbDir struct {
	owners int // number of packages listing it
	acl    acl
	hasM   bool
}

// installedDB is the part of lib/apk/db/installed lbu needs, keyed by root-relative path.
type installedDB struct {
	dirs  map[string]*dbDir
	files map[string]*dbFile
}

// readInstalledDB parses ROOT/lib/apk/db/installed. A missing database is an error: without it
// every file would look new.
func readInstalledDB(root string) (*installedDB, error) {
	p := filepath.Join(root, "lib/apk/db/installed")
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("installed database: %w", err)
	}
	defer f.Close()
	db := &installedDB{dirs: map[string]*dbDir{}, files: map[string]*dbFile{}}
	var (
		pkgName string
		curDir  string
		haveDir bool
		curFile *dbFile
		dirSeen map[string]bool // dirs already counted for this package
	)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	line := 0
	for sc.Scan() {
		line++
		t := sc.Text()
		if t == "" {
			pkgName, haveDir, curFile, dirSeen = "", false, nil, nil
			continue
		}
		if len(t) < 2 || t[1] != ':' {
			return nil, fmt.Errorf("%s:%d: malformed line %q", p, line, t)
		}
		v := t[2:]
		switch t[0] {
		case 'P':
			pkgName = v
			dirSeen = map[string]bool{}
		case 'F':
			curDir, haveDir, curFile = v, true, nil
			d := db.dirs[v]
			if d == nil {
				d = &dbDir{acl: defaultDirACL}
				db.dirs[v] = d
			}
			if dirSeen == nil {
				dirSeen = map[string]bool{}
			}
			if !dirSeen[v] {
				dirSeen[v] = true
				d.owners++
			}
		case 'M':
			if !haveDir {
				return nil, fmt.Errorf("%s:%d: M: without F:", p, line)
			}
			a, err := parseACL(v)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %w", p, line, err)
			}
			d := db.dirs[curDir]
			d.acl, d.hasM = a, true
		case 'R':
			if !haveDir {
				return nil, fmt.Errorf("%s:%d: R: without F:", p, line)
			}
			curFile = &dbFile{pkg: pkgName, acl: defaultFileACL}
			db.files[joinRel(curDir, v)] = curFile
		case 'a':
			if curFile == nil {
				return nil, fmt.Errorf("%s:%d: a: without R:", p, line)
			}
			a, err := parseACL(v)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %w", p, line, err)
			}
			curFile.acl = a
		case 'Z':
			if curFile == nil {
				return nil, fmt.Errorf("%s:%d: Z: without R:", p, line)
			}
			alg, sum, err := parseChecksum(v)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %w", p, line, err)
			}
			curFile.alg, curFile.csum = alg, sum
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return db, nil
}

func joinRel(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// parseACL parses "uid:gid:mode[:xattrhash]" (mode in octal).
func parseACL(v string) (acl, error) {
	fs := strings.Split(v, ":")
	if len(fs) < 3 {
		return acl{}, fmt.Errorf("bad acl %q", v)
	}
	uid, err1 := strconv.Atoi(fs[0])
	gid, err2 := strconv.Atoi(fs[1])
	mode, err3 := strconv.ParseUint(fs[2], 8, 32)
	if err1 != nil || err2 != nil || err3 != nil {
		return acl{}, fmt.Errorf("bad acl %q", v)
	}
	return acl{uid, gid, uint32(mode) & 07777}, nil
}

// parseChecksum decodes apk's "Q1<base64 sha1>" / "Q2<base64 sha256>" checksums.
func parseChecksum(v string) (string, []byte, error) {
	if len(v) < 2 || v[0] != 'Q' {
		return "", nil, fmt.Errorf("unsupported checksum %q", v)
	}
	b, err := base64.StdEncoding.DecodeString(v[2:])
	if err != nil {
		return "", nil, fmt.Errorf("bad checksum %q: %w", v, err)
	}
	switch {
	case v[1] == '1' && len(b) == sha1.Size:
		return "sha1", b, nil
	case v[1] == '2' && len(b) == sha256.Size:
		return "sha256", b, nil
	}
	return "", nil, fmt.Errorf("unsupported checksum %q", v)
}

func newHash(alg string) hash.Hash {
	if alg == "sha256" {
		return sha256.New()
	}
	return sha1.New()
}
