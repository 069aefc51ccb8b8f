package tmpfs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOptions(t *testing.T) {
	tests := []struct {
		rootflags, rootSize string
		flags               uintptr
		data                string
		err                 string
	}{
		{"", "", 0, "mode=0755", ""},
		{"size=75%", "", 0, "mode=0755,size=75%", ""},
		{"size=512m", "", 0, "mode=0755,size=512m", ""},
		{"", "256M", 0, "mode=0755,size=256M", ""},
		{"size=1g", "256M", 0, "mode=0755,size=1g", ""}, // rootflags wins over root_size
		{"rw,size=512m", "", 0, "mode=0755,size=512m", ""},
		{"mode=0700,nr_inodes=10k,nosuid,nodev", "", msNosuid | msNodev, "mode=0700,nr_inodes=10k", ""},
		{"huge=within_size,uid=0,gid=0", "", 0, "mode=0755,huge=within_size,uid=0,gid=0", ""},
		{"size=lots", "", 0, "", `rootflags option "size=lots"`},
		{"size=0%", "", 0, "", "percentage"},
		{"mode=rwx", "", 0, "", "octal"},
		{"sise=1g", "", 0, "", "unknown tmpfs option"},
		{"huge=sometimes", "", 0, "", "huge=sometimes"},
		{"", "big", 0, "", "root_size=big"},
	}
	for _, tt := range tests {
		flags, data, err := Options(tt.rootflags, tt.rootSize)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Options(%q, %q) error = %v, want containing %q", tt.rootflags, tt.rootSize, err, tt.err)
			}
			continue
		}
		if err != nil || flags != tt.flags || data != tt.data {
			t.Errorf("Options(%q, %q) = %#x, %q, %v, want %#x, %q, nil", tt.rootflags, tt.rootSize, flags, data, err, tt.flags, tt.data)
		}
	}
}

func TestFromFstab(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content string
		opts          string
		ok            bool
	}{
		{"alpine", "/dev/cdrom\t/media/cdrom\tiso9660\tnoauto,ro 0 0\n/dev/usbdisk\t/media/usb\tvfat\tnoauto\t0 0\ntmpfs\t/\ttmpfs\trw,size=512m 0 0\n", "rw,size=512m", true},
		{"commented", "# tmpfs / tmpfs size=1g 0 0\n", "", false},
		{"other-root", "/dev/sda1 / ext4 rw 0 1\n", "", false},
		{"no-opts", "tmpfs / tmpfs\n", "defaults", true},
	}
	for _, tt := range tests {
		p := filepath.Join(dir, tt.name)
		if err := os.WriteFile(p, []byte(tt.content), 0o644); err != nil {
			t.Fatal(err)
		}
		opts, ok, err := FromFstab(p)
		if err != nil || opts != tt.opts || ok != tt.ok {
			t.Errorf("FromFstab(%s) = %q, %v, %v, want %q, %v, nil", tt.name, opts, ok, err, tt.opts, tt.ok)
		}
	}
	if _, ok, err := FromFstab(filepath.Join(dir, "missing")); ok || err != nil {
		t.Errorf("FromFstab(missing) = _, %v, %v, want false, nil", ok, err)
	}
}
