package scripts_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ramboot/ramboot/internal/apkinstall/scripts"
	"github.com/ramboot/ramboot/internal/testdata"
)

// alpineRoot extracts the real Alpine minirootfs: a root whose /bin/sh is busybox.
func alpineRoot(t *testing.T) string {
	t.Helper()
	tgz := testdata.Path(t, "alpine", "minirootfs", "alpine-minirootfs-3.19.4-x86_64.tar.gz")
	if os.Geteuid() != 0 {
		t.Skip("prerequisite missing: root (scripts run chrooted)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("tar", "-xzf", tgz, "-C", dir).CombinedOutput(); err != nil {
		t.Fatalf("extract minirootfs: %v\n%s", err, out)
	}
	return dir
}

func TestRun(t *testing.T) {
	root := alpineRoot(t)
	script := "#!/bin/sh\necho \"$0|$*|$(pwd)|$(umask)|$(env | sort | tr '\\n' ' ')\" > /result\necho hello\n"
	var out bytes.Buffer
	err := scripts.Run(context.Background(), root, scripts.Script{Package: "demo-1.0-r0", Type: "post-install", Data: []byte(script), Args: []string{"1.0-r0"}}, &out, false)
	if err != nil {
		t.Fatalf("Run() error: %v", err)
	}
	got, err := os.ReadFile(filepath.Join(root, "result"))
	if err != nil {
		t.Fatalf("script did not run chrooted: %v", err)
	}
	fields := strings.Split(strings.TrimSpace(string(got)), "|")
	// For a #! script the kernel hands the interpreter the script's path as $0 (as with apk).
	if len(fields) != 5 || fields[0] != "/lib/apk/exec/demo-1.0-r0.post-install" || fields[1] != "1.0-r0" || fields[2] != "/" || fields[3] != "0022" {
		t.Errorf("script saw $0|args|cwd|umask = %q, want /lib/apk/exec/demo-1.0-r0.post-install|1.0-r0|/|0022", got)
	}
	if !strings.Contains(fields[4], "PATH=/usr/sbin:/usr/bin:/sbin:/bin") || strings.Contains(fields[4], "HOME=") {
		t.Errorf("script environment = %q, want only apk's PATH (plus what sh sets)", fields[4])
	}
	if want := "Executing demo-1.0-r0.post-install\nhello\n"; out.String() != want {
		t.Errorf("output = %q, want %q", out.String(), want)
	}
	if ents, _ := os.ReadDir(filepath.Join(root, scripts.ExecDir)); len(ents) != 0 {
		t.Errorf("%s not cleaned up: %d entries", scripts.ExecDir, len(ents))
	}
}

func TestRunFailure(t *testing.T) {
	root := alpineRoot(t)
	tests := []struct {
		name, script string
	}{
		{"exit status", "#!/bin/sh\nexit 3\n"},
		{"missing interpreter", "#!/no/such/shell\n"},
	}
	for _, tc := range tests {
		err := scripts.Run(context.Background(), root, scripts.Script{Package: "bad-2-r1", Type: "pre-install", Data: []byte(tc.script)}, &bytes.Buffer{}, true)
		var se *scripts.Error
		if !errors.As(err, &se) || !strings.Contains(err.Error(), "bad-2-r1.pre-install") {
			t.Errorf("Run(%s) error = %v, want a scripts.Error naming bad-2-r1.pre-install", tc.name, err)
		}
	}
}
