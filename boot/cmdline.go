package boot

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// PanicMode is what the failure policy does after a fatal boot error.
type PanicMode int

const (
	// PanicShell starts a rescue shell (busybox from the new root or the media) when one is
	// available, else reboots after DefaultPanicDelay. It is the default, like Alpine's
	// emergency shell, but never leaves a router hung when no shell exists.
	PanicShell PanicMode = iota
	// PanicReboot reboots after Config.PanicDelay (panic=N, N>0; bare "panic").
	PanicReboot
	// PanicHalt stops and waits forever (panic=0, the kernel's meaning of 0).
	PanicHalt
)

// DefaultPanicDelay is the reboot delay for a bare "panic" and for the shell mode without a shell.
const DefaultPanicDelay = 10 * time.Second

// DefaultPromptTimeout bounds the console password prompt for an encrypted apkovl
// (ramboot.prompt_timeout=): an unattended machine goes on without the overlay instead of hanging.
const DefaultPromptTimeout = 30 * time.Second

// DefaultMediaWait bounds the wait for boot media when nothing is found (nlplug-findfs: ≈5 s).
const DefaultMediaWait = 5 * time.Second

// Config is the parsed kernel command line (Alpine's names and semantics, see README.md).
type Config struct {
	Repos      []string // alpine_repo=, split on ","; empty = scan media for .boot_repository
	Apkovl     string   // apkovl=: URL, dev[:fstype]:relpath or path; "" = auto
	ApkovlKey  string   // apkovl_key=: password file for an encrypted apkovl, path or dev[:fstype]:relpath
	NoApkovl   bool     // noapkovl (or apkovl=no): boot without an overlay
	Pkgs       []string // pkgs=a,b
	Modules    []string // modules=a,b: loaded early
	Blacklist  []string // blacklist=a,b: never loaded
	USBDelay   time.Duration
	Debug      bool // debug_init (debug_init=no and nodebug_init mean off, unlike Alpine)
	Quiet      bool
	Consoles   []string // console= device names in order, options stripped; the last is /dev/console
	Single     bool     // single, s, 1: rescue shell before the root is built
	Init       string   // init=, default /sbin/init
	InitArgs   []string // init_args=, split on spaces (quoting honoured)
	Panic      PanicMode
	PanicDelay time.Duration
	RootFlags  string // rootflags=: appended to the tmpfs options
	RootSize   string // root_size= (deprecated by Alpine, still honoured)
	SSHKey     string
	KeepApkNew bool
	IP         string // ip=: parsed, network boot comes later

	// ramboot extensions (the ramboot. prefix keeps them apart from Alpine's names).
	MediaWait    time.Duration // ramboot.wait=SECONDS: deadline for boot media
	UnmountMedia bool          // ramboot.media=unmount: unmount the boot media before handover
	Strict       bool          // ramboot.strict: a world package that cannot be installed is fatal
	Prefer       []string      // ramboot.prefer=LABEL=x,UUID=y,vdb: media matching a hint come first
	// PromptTimeout bounds the console password prompt (ramboot.prompt_timeout=SECONDS; 0 = no prompt).
	PromptTimeout time.Duration

	// ModParams holds module parameters given as module.param=value (what modprobe reads from
	// /proc/cmdline), keyed by module name with - and _ equivalent.
	ModParams map[string]string

	Warnings []string // problems with parameter values; reported, never fatal
}

// ParseCmdline parses /proc/cmdline. Words are split on white space; double quotes group words
// (the kernel passes them through), which Alpine's unquoted `set --` does not honour. Unknown
// parameters are ignored, as the kernel does.
func ParseCmdline(line string) Config {
	c := Config{Init: "/sbin/init", MediaWait: DefaultMediaWait, PanicDelay: DefaultPanicDelay, PromptTimeout: DefaultPromptTimeout}
	for _, w := range splitWords(line) {
		name, value, hasValue := strings.Cut(w, "=")
		switch name {
		case "s", "single", "1":
			if !hasValue {
				c.Single = true
			}
			continue
		case "console":
			dev, _, _ := strings.Cut(value, ",")
			dev = strings.TrimPrefix(dev, "/dev/")
			if dev != "" {
				c.Consoles = append(c.Consoles, dev)
			}
			continue
		}
		if mod, param, ok := strings.Cut(name, "."); ok && hasValue && mod != "ramboot" && mod != "" && param != "" {
			mod = strings.ReplaceAll(mod, "-", "_")
			if c.ModParams == nil {
				c.ModParams = map[string]string{}
			}
			c.ModParams[mod] = strings.TrimSpace(c.ModParams[mod] + " " + param + "=" + value)
			continue
		}
		neg := false
		if !hasValue && strings.HasPrefix(name, "no") && known(name[2:]) {
			name, neg = name[2:], true
		}
		if !known(name) {
			continue
		}
		if !hasValue {
			value = "yes"
			if neg {
				value = "no"
			}
		}
		c.set(name, value)
	}
	return c
}

// known lists the parameter names ParseCmdline honours (Alpine's myopts subset plus ramboot.*).
func known(name string) bool {
	switch name {
	case "alpine_repo", "apkovl", "pkgs", "modules", "blacklist", "usbdelay", "debug_init", "quiet",
		"init", "init_args", "panic", "rootflags", "root_size", "ssh_key", "keep_apk_new", "ip",
		"apkovl_key", "ramboot.wait", "ramboot.media", "ramboot.strict", "ramboot.prefer", "ramboot.prompt_timeout":
		return true
	}
	return false
}

func (c *Config) set(name, value string) {
	yes := value != "no" && value != "0" && value != "false" && value != "off"
	switch name {
	case "alpine_repo":
		c.Repos = nil
		if value != "auto" && value != "no" {
			c.Repos = splitList(value)
		}
	case "apkovl":
		c.Apkovl, c.NoApkovl = value, value == "no" || value == "none"
		if c.NoApkovl {
			c.Apkovl = ""
		}
	case "apkovl_key":
		c.ApkovlKey = ""
		if value != "yes" && value != "no" {
			c.ApkovlKey = value
		}
	case "pkgs":
		c.Pkgs = append(c.Pkgs, splitList(value)...)
	case "modules":
		c.Modules = append(c.Modules, splitList(value)...)
	case "blacklist":
		c.Blacklist = append(c.Blacklist, splitList(value)...)
	case "usbdelay":
		c.USBDelay = c.seconds(name, value, 0)
	case "debug_init":
		c.Debug = yes
	case "quiet":
		c.Quiet = yes
	case "init":
		if value != "yes" && value != "no" {
			c.Init = value
		}
	case "init_args":
		c.InitArgs = strings.Fields(value)
	case "panic":
		c.setPanic(value)
	case "rootflags":
		c.RootFlags = value
	case "root_size":
		c.RootSize = value
		c.Warnings = append(c.Warnings, "root_size= is deprecated, use rootflags=size=")
	case "ssh_key":
		if value != "yes" && value != "no" {
			c.SSHKey = value
		}
	case "keep_apk_new":
		c.KeepApkNew = yes
	case "ip":
		c.IP = value
	case "ramboot.wait":
		c.MediaWait = c.seconds(name, value, DefaultMediaWait)
	case "ramboot.media":
		switch value {
		case "unmount":
			c.UnmountMedia = true
		case "keep", "yes":
			c.UnmountMedia = false
		default:
			c.Warnings = append(c.Warnings, fmt.Sprintf("ramboot.media=%s: want keep or unmount", value))
		}
	case "ramboot.prompt_timeout":
		c.PromptTimeout = c.seconds(name, value, DefaultPromptTimeout)
	case "ramboot.strict":
		c.Strict = yes
	case "ramboot.prefer":
		c.Prefer = append(c.Prefer, splitList(value)...)
	}
}

// setPanic gives panic= the meaning the user intends. Alpine treats any value, even "nopanic",
// as "no shell"; here: panic=shell or nopanic → shell, panic=N>0 or bare panic → reboot after N
// seconds, panic=0 → halt (the kernel's "wait forever"), panic=-N → reboot at once.
func (c *Config) setPanic(value string) {
	switch value {
	case "shell", "no":
		c.Panic = PanicShell
	case "yes", "reboot":
		c.Panic, c.PanicDelay = PanicReboot, DefaultPanicDelay
	case "halt":
		c.Panic = PanicHalt
	default:
		n, err := strconv.Atoi(value)
		switch {
		case err != nil:
			c.Warnings = append(c.Warnings, fmt.Sprintf("panic=%s: want shell, halt or seconds", value))
		case n == 0:
			c.Panic = PanicHalt
		case n < 0:
			c.Panic, c.PanicDelay = PanicReboot, 0
		default:
			c.Panic, c.PanicDelay = PanicReboot, time.Duration(n)*time.Second
		}
	}
}

func (c *Config) seconds(name, value string, def time.Duration) time.Duration {
	f, err := strconv.ParseFloat(value, 64)
	if err != nil || f < 0 {
		c.Warnings = append(c.Warnings, fmt.Sprintf("%s=%s: want seconds", name, value))
		return def
	}
	return time.Duration(f * float64(time.Second))
}

// Console is the device init's stdio is reopened on: the last console= (the kernel's
// /dev/console), or "console".
func (c *Config) Console() string {
	if len(c.Consoles) == 0 {
		return "console"
	}
	return c.Consoles[len(c.Consoles)-1]
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// splitWords splits on white space; a double-quoted section may contain spaces (quotes removed).
func splitWords(line string) []string {
	var words []string
	var cur strings.Builder
	inQuote, inWord := false, false
	for _, r := range line {
		switch {
		case r == '"':
			inQuote, inWord = !inQuote, true
		case !inQuote && (r == ' ' || r == '\t' || r == '\n'):
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}
