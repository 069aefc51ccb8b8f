package lbu

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseRule(t *testing.T) {
	tests := []struct {
		line string
		want Rule
		ok   bool
	}{
		{"+etc/foo", Rule{Pattern: "etc/foo", Mode: ModeChanged}, true},
		{"-etc/ssl/certs/ca-cert-*.pem", Rule{Pattern: "etc/ssl/certs/ca-cert-*.pem", Mode: ModeIgnore}, true},
		{"@etc/init.d", Rule{Pattern: "etc/init.d", Mode: ModeSymlinksOnly}, true},
		{"!etc/apk/", Rule{Pattern: "etc/apk", Mode: ModeAll}, true},
		{"/root/", Rule{Pattern: "root", Mode: ModeChanged}, true}, // other first char: CHANGED, kept
		{"home", Rule{Pattern: "home", Mode: ModeChanged}, true},
		{"# comment", Rule{}, false},
		{"", Rule{}, false},
		{"+/", Rule{}, false},
	}
	for _, tc := range tests {
		got, ok := ParseRule(tc.line)
		if ok != tc.ok || got != tc.want {
			t.Errorf("ParseRule(%q) = %+v, %v, want %+v, %v", tc.line, got, ok, tc.want, tc.ok)
		}
	}
}

// Protect modes per path for a rule set mixing apk built-ins, ca-certificates' list and lbu.list.
func TestModeOf(t *testing.T) {
	root := t.TempDir()
	d := filepath.Join(root, "etc/apk/protected_paths.d")
	os.MkdirAll(d, 0755)
	// Files are read in sorted order: ca-certificates.list before lbu.list.
	os.WriteFile(filepath.Join(d, "lbu.list"), []byte("+root/.ssh\n+home/*/.config\n-etc/secret*\n+etc/secret.keep\n!etc/ssl/certs/mine.pem\n+etc/init.d/local-*\n"), 0644)
	os.WriteFile(filepath.Join(d, "ca-certificates.list"), []byte("-etc/ssl/certs/ca-certificates.crt\n-etc/ssl/certs/*.pem\n"), 0644)
	os.WriteFile(filepath.Join(d, ".hidden.list"), []byte("+var\n"), 0644)
	os.WriteFile(filepath.Join(d, "notalist.txt"), []byte("+usr\n"), 0644)
	rules, err := LoadRules(root)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path  string
		isDir bool
		want  Mode
	}{
		{"etc", true, ModeChanged},
		{"etc/hosts", false, ModeChanged},
		{"etc/init.d", true, ModeSymlinksOnly},
		{"etc/init.d/sshd", false, ModeSymlinksOnly},
		{"etc/init.d/local-fw", false, ModeChanged}, // lbu include beats @etc/init.d
		{"etc/apk/world", false, ModeAll},
		{"etc/apk/keys", true, ModeAll},
		{"etc/ssl/certs/ca-certificates.crt", false, ModeIgnore},
		{"etc/ssl/certs/x.pem", false, ModeIgnore},
		{"etc/ssl/certs/mine.pem", false, ModeAll}, // later rule wins
		{"etc/secret.txt", false, ModeIgnore},
		{"etc/secret.keep", false, ModeChanged}, // last match wins
		{"root", true, ModeNone},
		{"root/.ssh", true, ModeChanged},
		{"root/.ssh/authorized_keys", false, ModeChanged},
		{"home/alice/.config", true, ModeChanged},
		{"home/alice/.config/x", false, ModeChanged},
		{"home/alice/.bashrc", false, ModeNone},
		{"var/log", true, ModeNone},   // hidden list ignored
		{"usr/share", true, ModeNone}, // non-.list ignored
		{"hosts", false, ModeNone},    // no file-level rules at the root
	}
	for _, tc := range tests {
		if got := ModeOf(rules, tc.path, tc.isDir); got != tc.want {
			t.Errorf("ModeOf(%s, dir=%v) = %s, want %s", tc.path, tc.isDir, got, tc.want)
		}
	}
}

func TestUpdateList(t *testing.T) {
	root := t.TempDir()
	steps := []struct {
		sign    byte
		paths   []string
		remove  bool
		want    []string // resulting lines
		wantMsg []string
	}{
		{'+', []string{"/root", "etc/x"}, false, []string{"+root", "+etc/x"},
			[]string{"Adding root to /" + ListFile, "Adding etc/x to /" + ListFile}},
		{'+', []string{"//root"}, false, []string{"+root", "+etc/x"}, []string{"root is already in /" + ListFile}},
		{'-', []string{"root"}, false, []string{"+etc/x", "-root"}, []string{"Adding root to /" + ListFile}},
		{'+', []string{"root"}, false, []string{"+etc/x", "+root"}, []string{"Adding root to /" + ListFile}},
		{'+', []string{"etc/x", "nope"}, true, []string{"+root"},
			[]string{"Removing etc/x from /" + ListFile, "nope is not in /" + ListFile}},
		{'-', []string{"var/*.log"}, false, []string{"+root", "-var/*.log"}, []string{"Adding var/*.log to /" + ListFile}},
	}
	for i, s := range steps {
		msgs, err := UpdateList(root, s.sign, s.paths, s.remove)
		if err != nil {
			t.Fatalf("step %d: UpdateList error: %v", i, err)
		}
		lines, _ := readList(root)
		if d := cmp.Diff(s.want, lines); d != "" {
			t.Errorf("step %d: lbu.list (-want +got):\n%s", i, d)
		}
		if d := cmp.Diff(s.wantMsg, msgs); d != "" {
			t.Errorf("step %d: messages (-want +got):\n%s", i, d)
		}
	}
	inc, _ := ListEntries(root, '+')
	exc, _ := ListEntries(root, '-')
	if d := cmp.Diff([]string{"root"}, inc); d != "" {
		t.Errorf("ListEntries(+) (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"var/*.log"}, exc); d != "" {
		t.Errorf("ListEntries(-) (-want +got):\n%s", d)
	}
	if _, err := UpdateList(root, '+', []string{"/"}, false); err == nil {
		t.Errorf("UpdateList(/) = nil error, want an error for an empty path")
	}
}

func TestLoadConfig(t *testing.T) {
	tests := []struct {
		name, conf string
		env        map[string]string
		want       Config
		wantErr    bool
	}{
		{"alpine default file", "DEFAULT_CIPHER=aes-256-cbc\n# ENCRYPTION=$DEFAULT_CIPHER\n# LBU_MEDIA=usb\n", nil,
			Config{DefaultCipher: "aes-256-cbc"}, false},
		{"expansion and quotes", "DEFAULT_CIPHER=aes-128-cbc\nENCRYPTION=$DEFAULT_CIPHER\nLBU_MEDIA=\"vda\" # boot medium\nPASSWORD='p@ss word'\nBACKUP_LIMIT=5\n", nil,
			Config{DefaultCipher: "aes-128-cbc", Encryption: "aes-128-cbc", Media: "vda", Password: "p@ss word", BackupLimit: 5, BackupLimitSet: true}, false},
		{"braces and export", "export LBU_BACKUPDIR=${HOME_DIR:-/root}/backups\n", nil,
			Config{DefaultCipher: "aes-256-cbc", BackupDir: "/root/backups"}, false},
		{"file beats environment", "LBU_MEDIA=sda1\n", map[string]string{"LBU_MEDIA": "usb", "BACKUP_LIMIT": "2"},
			Config{DefaultCipher: "aes-256-cbc", Media: "sda1", BackupLimit: 2, BackupLimitSet: true}, false},
		{"commands are not executed", "rm -rf /\nLBU_MEDIA=vda; echo hi\n", nil,
			Config{DefaultCipher: "aes-256-cbc", Media: "vda"}, false},
		{"bad limit", "BACKUP_LIMIT=many\n", nil, Config{}, true},
		{"unterminated quote", "PASSWORD='abc\n", nil, Config{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			os.MkdirAll(filepath.Join(root, "etc/lbu"), 0755)
			os.WriteFile(filepath.Join(root, "etc/lbu/lbu.conf"), []byte(tc.conf), 0644)
			got, err := LoadConfig(root, func(k string) string { return tc.env[k] })
			if (err != nil) != tc.wantErr {
				t.Fatalf("LoadConfig() error = %v, want error %v", err, tc.wantErr)
			}
			if err == nil && got != tc.want {
				t.Errorf("LoadConfig() = %+v, want %+v", got, tc.want)
			}
		})
	}
}
