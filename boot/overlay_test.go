package boot

import (
	"os"
	"path/filepath"
	"testing"
)

// TestHostname: the name an apkovl is preferred by comes from ip='s hostname field, else from the
// kernel unless it is a placeholder.
func TestHostname(t *testing.T) {
	tests := []struct {
		ip, kernel, want string
	}{
		{"", "", ""},
		{"", "(none)\n", ""},
		{"", "localhost\n", ""},
		{"", "router\n", "router"},
		{"dhcp", "router\n", "router"},
		{"10.0.0.2::10.0.0.1:255.255.255.0:gw1:eth0:none", "router\n", "gw1"},
		{"10.0.0.2::10.0.0.1:255.255.255.0::eth0:none", "(none)\n", ""},
	}
	for _, tc := range tests {
		root := t.TempDir()
		if tc.kernel != "" {
			p := filepath.Join(root, "proc/sys/kernel/hostname")
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, []byte(tc.kernel), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		s := &state{env: &Env{Root: root}, cfg: ParseCmdline("ip=" + tc.ip)}
		if got := s.hostname(); got != tc.want {
			t.Errorf("hostname(ip=%q, kernel %q) = %q, want %q", tc.ip, tc.kernel, got, tc.want)
		}
	}
}
