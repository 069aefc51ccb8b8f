package lbu

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Config is lbu's configuration: /etc/lbu/lbu.conf over the environment (Alpine sources the
// file after reading the environment, so file values win).
type Config struct {
	Media       string // LBU_MEDIA: name under /media
	BackupDir   string // LBU_BACKUPDIR: plain directory, no mounting; wins over Media
	BackupLimit int    // BACKUP_LIMIT
	// BackupLimitSet is false when BACKUP_LIMIT is not configured (DefaultBackupLimit applies).
	BackupLimitSet bool
	Encryption     string // ENCRYPTION: openssl cipher name, "" = plain
	DefaultCipher  string // DEFAULT_CIPHER (aes-256-cbc)
	Password       string // PASSWORD
}

// configVars are the variables lbu reads.
var configVars = []string{"LBU_MEDIA", "LBU_BACKUPDIR", "BACKUP_LIMIT", "ENCRYPTION", "DEFAULT_CIPHER", "PASSWORD"}

// LoadConfig reads ROOT/etc/lbu/lbu.conf (missing is fine) on top of getenv (nil = none). The
// file is parsed as restricted shell: KEY=value lines, optional "export", single/double quotes,
// $VAR and ${VAR} expansion, comments; anything else is ignored, nothing is executed.
func LoadConfig(root string, getenv func(string) string) (Config, error) {
	vars := map[string]string{"DEFAULT_CIPHER": "aes-256-cbc"}
	if getenv != nil {
		for _, k := range configVars {
			if v := getenv(k); v != "" {
				vars[k] = v
			}
		}
	}
	p := filepath.Join(root, "etc/lbu/lbu.conf")
	f, err := os.Open(p)
	if err != nil && !os.IsNotExist(err) {
		return Config{}, fmt.Errorf("lbu config: %w", err)
	}
	if err == nil {
		sc := bufio.NewScanner(f)
		n := 0
		for sc.Scan() {
			n++
			k, v, ok, err := parseAssign(sc.Text(), vars)
			if err != nil {
				f.Close()
				return Config{}, fmt.Errorf("%s:%d: %w", p, n, err)
			}
			if ok {
				vars[k] = v
			}
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return Config{}, fmt.Errorf("%s: %w", p, err)
		}
	}
	c := Config{
		Media: vars["LBU_MEDIA"], BackupDir: vars["LBU_BACKUPDIR"],
		Encryption: vars["ENCRYPTION"], DefaultCipher: vars["DEFAULT_CIPHER"], Password: vars["PASSWORD"],
	}
	if s := vars["BACKUP_LIMIT"]; s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return Config{}, fmt.Errorf("%s: BACKUP_LIMIT=%q is not a non-negative number", p, s)
		}
		c.BackupLimit, c.BackupLimitSet = n, true
	}
	return c, nil
}

// parseAssign parses one shell line of the form [export] KEY=VALUE [# comment].
func parseAssign(line string, vars map[string]string) (key, val string, ok bool, err error) {
	s := strings.TrimSpace(line)
	if s == "" || s[0] == '#' {
		return "", "", false, nil
	}
	s = strings.TrimPrefix(s, "export ")
	s = strings.TrimSpace(s)
	eq := strings.IndexByte(s, '=')
	if eq <= 0 || !isName(s[:eq]) {
		return "", "", false, nil // not an assignment (a command): ignored, never executed
	}
	key, rest := s[:eq], s[eq+1:]
	var b strings.Builder
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		switch {
		case c == '\'':
			j := strings.IndexByte(rest[i+1:], '\'')
			if j < 0 {
				return "", "", false, fmt.Errorf("unterminated quote in %q", line)
			}
			b.WriteString(rest[i+1 : i+1+j])
			i += j + 1
		case c == '"':
			i++
			for ; i < len(rest) && rest[i] != '"'; i++ {
				if rest[i] == '\\' && i+1 < len(rest) {
					i++
					b.WriteByte(rest[i])
				} else if rest[i] == '$' {
					v, n := expand(rest[i:], vars)
					b.WriteString(v)
					i += n - 1
				} else {
					b.WriteByte(rest[i])
				}
			}
			if i >= len(rest) {
				return "", "", false, fmt.Errorf("unterminated quote in %q", line)
			}
		case c == '\\' && i+1 < len(rest):
			i++
			b.WriteByte(rest[i])
		case c == '$':
			v, n := expand(rest[i:], vars)
			b.WriteString(v)
			i += n - 1
		case c == ' ' || c == '\t' || c == ';':
			return key, b.String(), true, nil // rest is a comment or another command: ignored
		default:
			b.WriteByte(c)
		}
	}
	return key, b.String(), true, nil
}

// expand expands $NAME or ${NAME} at the start of s, returning the value and bytes consumed.
func expand(s string, vars map[string]string) (string, int) {
	if len(s) > 1 && s[1] == '{' {
		if j := strings.IndexByte(s, '}'); j > 2 {
			name := s[2:j]
			if d := strings.Index(name, ":-"); d > 0 {
				if v := vars[name[:d]]; v != "" {
					return v, j + 1
				}
				return name[d+2:], j + 1
			}
			return vars[name], j + 1
		}
		return "$", 1
	}
	n := 1
	for n < len(s) && (s[n] == '_' || isAlnum(s[n])) {
		n++
	}
	if n == 1 {
		return "$", 1
	}
	return vars[s[1:n]], n
}

func isName(s string) bool {
	for i := 0; i < len(s); i++ {
		if !(s[i] == '_' || isAlnum(s[i])) || (i == 0 && s[i] >= '0' && s[i] <= '9') {
			return false
		}
	}
	return s != ""
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
