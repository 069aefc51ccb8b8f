package boot

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestParseCmdline(t *testing.T) {
	def := ParseCmdline("")
	with := func(f func(c *Config)) Config {
		c := ParseCmdline("")
		f(&c)
		return c
	}
	tests := []struct {
		line string
		want Config
	}{
		{"", Config{Init: "/sbin/init", MediaWait: DefaultMediaWait, PanicDelay: DefaultPanicDelay, PromptTimeout: DefaultPromptTimeout}},
		{"BOOT_IMAGE=/boot/vmlinuz-lts root=/dev/sda foo=bar nomodeset", def},
		// Alpine's ISO default.
		{"modules=loop,squashfs,sd-mod,usb-storage quiet", with(func(c *Config) {
			c.Modules = []string{"loop", "squashfs", "sd-mod", "usb-storage"}
			c.Quiet = true
		})},
		{"quiet=no", def},
		{"alpine_repo=/media/vda/apks,/media/vdb/apks", with(func(c *Config) { c.Repos = []string{"/media/vda/apks", "/media/vdb/apks"} })},
		{"alpine_repo=auto", def},
		{"apkovl=/media/sda1/myhost.apkovl.tar.gz", with(func(c *Config) { c.Apkovl = "/media/sda1/myhost.apkovl.tar.gz" })},
		{"apkovl=sda1:vfat:cfg/h.apkovl.tar.gz", with(func(c *Config) { c.Apkovl = "sda1:vfat:cfg/h.apkovl.tar.gz" })},
		{"apkovl=http://10.0.0.1/{MAC}.apkovl.tar.gz", with(func(c *Config) { c.Apkovl = "http://10.0.0.1/{MAC}.apkovl.tar.gz" })},
		{"noapkovl", with(func(c *Config) { c.NoApkovl = true })},
		{"apkovl=x noapkovl", with(func(c *Config) { c.NoApkovl = true })},
		{"pkgs=htop,vim pkgs=tmux", with(func(c *Config) { c.Pkgs = []string{"htop", "vim", "tmux"} })},
		{"blacklist=pcspkr,floppy", with(func(c *Config) { c.Blacklist = []string{"pcspkr", "floppy"} })},
		{"usbdelay=3", with(func(c *Config) { c.USBDelay = 3 * time.Second })},
		{"usbdelay=0.5", with(func(c *Config) { c.USBDelay = 500 * time.Millisecond })},
		{"usbdelay=x", with(func(c *Config) { c.Warnings = []string{"usbdelay=x: want seconds"} })},
		{"debug_init", with(func(c *Config) { c.Debug = true })},
		// Alpine quirk: debug_init=no enables debugging; here it means what it says.
		{"debug_init=no", def},
		{"debug_init nodebug_init", def},
		{"console=tty0 console=ttyS0,115200n8", with(func(c *Config) { c.Consoles = []string{"tty0", "ttyS0"} })},
		{"single", with(func(c *Config) { c.Single = true })},
		{"s", with(func(c *Config) { c.Single = true })},
		{"1", with(func(c *Config) { c.Single = true })},
		{"init=/bin/sh", with(func(c *Config) { c.Init = "/bin/sh" })},
		{`init_args="-a -b"`, with(func(c *Config) { c.InitArgs = []string{"-a", "-b"} })},
		{"init_args=single", with(func(c *Config) { c.InitArgs = []string{"single"} })},
		{"panic=10", with(func(c *Config) { c.Panic, c.PanicDelay = PanicReboot, 10*time.Second })},
		{"panic=0", with(func(c *Config) { c.Panic = PanicHalt })},
		{"panic=-1", with(func(c *Config) { c.Panic, c.PanicDelay = PanicReboot, 0 })},
		{"panic", with(func(c *Config) { c.Panic = PanicReboot })},
		{"panic=shell", def},
		// Alpine quirk: nopanic disables the shell; here it means "don't panic": keep the shell.
		{"panic=5 nopanic", with(func(c *Config) { c.PanicDelay = 5 * time.Second })},
		{"panic=soon", with(func(c *Config) { c.Warnings = []string{"panic=soon: want shell, halt or seconds"} })},
		{"rootflags=size=75%", with(func(c *Config) { c.RootFlags = "size=75%" })},
		{"root_size=512m", with(func(c *Config) {
			c.RootSize = "512m"
			c.Warnings = []string{"root_size= is deprecated, use rootflags=size="}
		})},
		{"ssh_key=https://example.org/key.pub", with(func(c *Config) { c.SSHKey = "https://example.org/key.pub" })},
		{`ssh_key="ssh-ed25519 AAAAC3 me@host"`, with(func(c *Config) { c.SSHKey = "ssh-ed25519 AAAAC3 me@host" })},
		{"keep_apk_new", with(func(c *Config) { c.KeepApkNew = true })},
		{"apkovl_key=/etc/ovl.key", with(func(c *Config) { c.ApkovlKey = "/etc/ovl.key" })},
		{"apkovl_key=vdb:vfat:keys/h.pass", with(func(c *Config) { c.ApkovlKey = "vdb:vfat:keys/h.pass" })},
		{"apkovl_key=/k noapkovl_key", def},
		{"ramboot.prompt_timeout=5", with(func(c *Config) { c.PromptTimeout = 5 * time.Second })},
		{"ramboot.prompt_timeout=0", with(func(c *Config) { c.PromptTimeout = 0 })},
		{"ramboot.prompt_timeout=never", with(func(c *Config) {
			c.Warnings = []string{"ramboot.prompt_timeout=never: want seconds"}
		})},
		{"ip=dhcp", with(func(c *Config) { c.IP = "dhcp" })},
		{"ip=10.0.0.2::10.0.0.1:255.255.255.0::eth0:none", with(func(c *Config) { c.IP = "10.0.0.2::10.0.0.1:255.255.255.0::eth0:none" })},
		{"ramboot.wait=1.5 ramboot.media=unmount ramboot.strict", with(func(c *Config) {
			c.MediaWait, c.UnmountMedia, c.Strict = 1500*time.Millisecond, true, true
		})},
		{"ramboot.prefer=LABEL=ALPINE,vdb ramboot.prefer=UUID=1234-ABCD", with(func(c *Config) { c.Prefer = []string{"LABEL=ALPINE", "vdb", "UUID=1234-ABCD"} })},
		{"ramboot.media=eject", with(func(c *Config) { c.Warnings = []string{"ramboot.media=eject: want keep or unmount"} })},
		{"\tquiet\n", with(func(c *Config) { c.Quiet = true })},
	}
	for _, tt := range tests {
		got := ParseCmdline(tt.line)
		if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("ParseCmdline(%q) mismatch (-want +got):\n%s", tt.line, diff)
		}
	}
}

func TestConsole(t *testing.T) {
	for _, tt := range []struct{ line, want string }{
		{"", "console"},
		{"console=ttyS0,115200", "ttyS0"},
		{"console=ttyS0 console=tty1", "tty1"},
		{"console=/dev/ttyAMA0", "ttyAMA0"},
	} {
		c := ParseCmdline(tt.line)
		if got := c.Console(); got != tt.want {
			t.Errorf("ParseCmdline(%q).Console() = %q, want %q", tt.line, got, tt.want)
		}
	}
}

func TestExpandApkovlURL(t *testing.T) {
	got := ExpandApkovlURL("http://h/{MAC}/{UUID}.apkovl.tar.gz?x={MAC}", "52:54:00:12:34:56", "u-1")
	want := "http://h/52:54:00:12:34:56/u-1.apkovl.tar.gz?x=52:54:00:12:34:56"
	if got != want {
		t.Errorf("ExpandApkovlURL() = %q, want %q", got, want)
	}
}
