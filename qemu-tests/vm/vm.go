// Package vm runs one QEMU guest for a boot test: it builds the command line for the target
// architecture (always TCG), records the serial console line by line with timestamps, waits for
// marker text, writes to the serial console, talks QMP (device hot-unplug) and enforces a hard
// timeout so a wedged guest can never hang a test run.
package vm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DiskKind says how a disk image is attached.
type DiskKind int

const (
	// Virtio is a virtio-blk PCI disk (/dev/vdX); it can be hot-unplugged.
	Virtio DiskKind = iota
	// CDROM is a CD drive: IDE on x86_64 (/dev/sr0, needs ata_piix + sr_mod), virtio-scsi on
	// aarch64 virt, where -cdrom would silently attach nothing.
	CDROM
)

// Disk is one image attached to the guest. ID names the QEMU device for RemoveDisk.
type Disk struct {
	ID       string
	Path     string
	Kind     DiskKind
	ReadOnly bool
}

// Config describes one VM.
type Config struct {
	Arch     string        // "x86_64" or "aarch64"
	Kernel   string        // kernel image (bzImage on x86_64, Image on aarch64)
	Initrd   string        // initramfs
	Append   string        // extra kernel command line; console= and panic=-1 are always added
	MemoryMB int           // default 1024
	Disks    []Disk        // in order; the first virtio disk is vda
	Timeout  time.Duration // hard limit for the whole VM life; default 5 minutes
	QEMU     string        // binary; default qemu-system-ARCH
	LogFile  string        // if set, the full console transcript is written here
	// OnLine, if set, is called for every completed console line (for example t.Log).
	OnLine func(Line)
}

// VM is a running guest.
type VM struct {
	cfg     Config
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	start   time.Time
	qmp     *qmpClient
	tmpDir  string
	stderr  bytes.Buffer
	logFile *os.File

	mu      sync.Mutex
	con     console
	cursor  int           // Expect searches the cleaned transcript from here
	changed chan struct{} // closed and replaced whenever console output arrives
	exited  chan struct{} // closed when QEMU has exited
	waitErr error
	killed  string // why the harness killed the VM, if it did
}

// Binary returns the QEMU system emulator for arch.
func Binary(arch string) (string, error) {
	switch arch {
	case "x86_64":
		return "qemu-system-x86_64", nil
	case "aarch64":
		return "qemu-system-aarch64", nil
	}
	return "", fmt.Errorf("vm: unsupported architecture %q (want x86_64 or aarch64)", arch)
}

// Console returns the serial console device name the guest kernel should use on arch.
func Console(arch string) string {
	if arch == "aarch64" {
		return "ttyAMA0"
	}
	return "ttyS0"
}

// Args returns the QEMU arguments for cfg; qmpSocket may be empty.
func Args(cfg Config, qmpSocket string) ([]string, error) {
	if _, err := Binary(cfg.Arch); err != nil {
		return nil, err
	}
	if cfg.Kernel == "" {
		return nil, errors.New("vm: no kernel given")
	}
	mem := cfg.MemoryMB
	if mem == 0 {
		mem = 1024
	}
	// TCG only: /dev/kvm on the test machines is PVM, which hangs stock kernels (notes §1).
	args := []string{"-accel", "tcg"}
	if cfg.Arch == "aarch64" {
		// cortex-a57: -cpu max emulates pointer authentication slowly.
		args = append(args, "-M", "virt", "-cpu", "cortex-a57")
	} else {
		args = append(args, "-M", "pc")
		if c := os.Getenv("RAMBOOT_QEMU_CPU"); c != "" {
			args = append(args, "-cpu", c)
		}
	}
	// Two vCPUs, as in the set-up the boot-time target is stated for (the installer decodes
	// packages in parallel); RAMBOOT_QEMU_SMP overrides, RAMBOOT_QEMU_CPU picks an x86 CPU model.
	smp := "2"
	if n := os.Getenv("RAMBOOT_QEMU_SMP"); n != "" {
		smp = n
	}
	if cfg.Arch == "x86_64" {
		args = append(args, "-smp", smp)
	}
	args = append(args,
		"-m", fmt.Sprint(mem),
		"-nodefaults", "-no-user-config", "-display", "none",
		"-serial", "stdio",
		// A panic or reboot ends QEMU instead of looping; success is judged by console markers.
		"-no-reboot",
		"-kernel", cfg.Kernel,
	)
	if cfg.Initrd != "" {
		args = append(args, "-initrd", cfg.Initrd)
	}
	cmdline := "console=" + Console(cfg.Arch) + " panic=-1"
	if cfg.Append != "" {
		cmdline += " " + cfg.Append
	}
	// RAMBOOT_QEMU_APPEND adds kernel parameters to every guest (experiments, debug_init).
	if extra := os.Getenv("RAMBOOT_QEMU_APPEND"); extra != "" {
		cmdline += " " + extra
	}
	args = append(args, "-append", cmdline)
	scsi := false
	for i, d := range cfg.Disks {
		if d.Path == "" {
			return nil, fmt.Errorf("vm: disk %d has no path", i)
		}
		id := d.ID
		if id == "" {
			id = fmt.Sprintf("disk%d", i)
		}
		if strings.ContainsAny(id, ",= ") || strings.ContainsAny(d.Path, ",") {
			return nil, fmt.Errorf("vm: disk %q (%s): id and path must not contain commas", id, d.Path)
		}
		drive := fmt.Sprintf("if=none,id=drv-%s,file=%s,format=raw", id, d.Path)
		if d.ReadOnly || d.Kind == CDROM {
			drive += ",readonly=on"
		}
		switch d.Kind {
		case Virtio:
			bus := ""
			if cfg.Arch == "aarch64" {
				// Devices on the virt board's PCIe root complex cannot be hot-unplugged; a
				// root port each makes RemoveDisk work through native PCIe hotplug.
				args = append(args, "-device", fmt.Sprintf("pcie-root-port,id=rp-%s,chassis=%d", id, i+1))
				bus = ",bus=rp-" + id
			}
			args = append(args, "-drive", drive, "-device", fmt.Sprintf("virtio-blk-pci,drive=drv-%s,id=%s%s", id, id, bus))
		case CDROM:
			if cfg.Arch == "aarch64" {
				if !scsi {
					args = append(args, "-device", "virtio-scsi-pci,id=scsi0")
					scsi = true
				}
				args = append(args, "-drive", drive+",media=cdrom", "-device", fmt.Sprintf("scsi-cd,bus=scsi0.0,drive=drv-%s,id=%s", id, id))
			} else {
				args = append(args, "-drive", drive+",media=cdrom", "-device", fmt.Sprintf("ide-cd,bus=ide.1,drive=drv-%s,id=%s", id, id))
			}
		default:
			return nil, fmt.Errorf("vm: disk %q: unknown kind %d", id, d.Kind)
		}
	}
	// Entropy: sshd key generation otherwise waits seconds for the CRNG. After the disks, so
	// it takes the PCI slot after them: the kernel probes PCI devices in slot order, one by one
	// (~140 ms each under TCG), and the boot-time set-up has only the media.
	args = append(args, "-device", "virtio-rng-pci")
	if qmpSocket != "" {
		args = append(args, "-qmp", "unix:"+qmpSocket+",server=on,wait=off")
	}
	return args, nil
}

// Start boots the VM. The caller must call Close (which kills it if still running).
func Start(cfg Config) (*VM, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Minute
	}
	bin := cfg.QEMU
	if bin == "" {
		var err error
		if bin, err = Binary(cfg.Arch); err != nil {
			return nil, err
		}
	}
	// A short private directory: unix socket paths are limited to 108 bytes and test temp
	// directories can be longer.
	tmp, err := os.MkdirTemp("", "rbvm")
	if err != nil {
		return nil, fmt.Errorf("vm: %w", err)
	}
	sock := filepath.Join(tmp, "qmp")
	args, err := Args(cfg, sock)
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	v := &VM{cfg: cfg, tmpDir: tmp, changed: make(chan struct{}), exited: make(chan struct{})}
	if cfg.LogFile != "" {
		if err := os.MkdirAll(filepath.Dir(cfg.LogFile), 0o755); err != nil {
			os.RemoveAll(tmp)
			return nil, fmt.Errorf("vm: console log: %w", err)
		}
		if v.logFile, err = os.Create(cfg.LogFile); err != nil {
			os.RemoveAll(tmp)
			return nil, fmt.Errorf("vm: console log: %w", err)
		}
		fmt.Fprintf(v.logFile, "# %s %s\n", bin, strings.Join(args, " "))
	}
	v.cmd = exec.Command(bin, args...)
	v.cmd.Stderr = &v.stderr
	// Own process group so that Close kills QEMU and nothing else.
	v.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := v.cmd.StdoutPipe()
	if err != nil {
		v.cleanup()
		return nil, fmt.Errorf("vm: %w", err)
	}
	if v.stdin, err = v.cmd.StdinPipe(); err != nil {
		v.cleanup()
		return nil, fmt.Errorf("vm: %w", err)
	}
	v.start = time.Now()
	if err := v.cmd.Start(); err != nil {
		v.cleanup()
		return nil, fmt.Errorf("vm: start %s: %w", bin, err)
	}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		v.readConsole(stdout)
	}()
	go func() {
		<-readDone
		err := v.cmd.Wait()
		v.mu.Lock()
		v.waitErr = err
		v.mu.Unlock()
		close(v.exited)
	}()
	hard := time.AfterFunc(cfg.Timeout, func() { v.kill(fmt.Sprintf("hard timeout %v reached", cfg.Timeout)) })
	go func() {
		<-v.exited
		hard.Stop()
	}()
	v.qmp = newQMP(sock, v.exited)
	return v, nil
}

func (v *VM) readConsole(r io.Reader) {
	buf := make([]byte, 4096)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			at := time.Since(v.start)
			v.mu.Lock()
			lines := v.con.write(buf[:n], at)
			if v.logFile != nil {
				for _, l := range lines {
					fmt.Fprintln(v.logFile, l.String())
				}
			}
			close(v.changed)
			v.changed = make(chan struct{})
			v.mu.Unlock()
			if v.cfg.OnLine != nil {
				for _, l := range lines {
					v.cfg.OnLine(l)
				}
			}
		}
		if err != nil {
			return
		}
	}
}

// kill ends QEMU (if running) and records why.
func (v *VM) kill(reason string) {
	v.mu.Lock()
	if v.killed == "" {
		v.killed = reason
	}
	v.mu.Unlock()
	select {
	case <-v.exited:
		return
	default:
	}
	if v.cmd.Process != nil {
		// Negative pid: the process group created with Setpgid, i.e. QEMU only.
		_ = syscall.Kill(-v.cmd.Process.Pid, syscall.SIGKILL)
	}
}

// Close kills the VM if it still runs and releases its resources. It is safe to call twice.
func (v *VM) Close() {
	v.kill("closed by the test")
	<-v.exited
	v.qmp.close()
	v.cleanup()
}

func (v *VM) cleanup() {
	if v.logFile != nil {
		v.mu.Lock()
		if p := v.con.partial.String(); p != "" {
			fmt.Fprintf(v.logFile, "[   ...  ] %s\n", p)
		}
		if v.stderr.Len() > 0 {
			fmt.Fprintf(v.logFile, "# qemu stderr:\n%s", v.stderr.String())
		}
		v.logFile.Close()
		v.logFile = nil
		v.mu.Unlock()
	}
	os.RemoveAll(v.tmpDir)
}

// Elapsed is the time since QEMU was started.
func (v *VM) Elapsed() time.Duration { return time.Since(v.start) }

// ErrExited is returned (wrapped) when QEMU ended before the awaited text appeared.
var ErrExited = errors.New("VM exited")

// ErrPanic is returned (wrapped) when the guest kernel panicked before the awaited text appeared.
var ErrPanic = errors.New("guest kernel panic")

// Expect waits until re matches complete console lines that arrived after the previous match
// and returns the submatches. Only terminated lines are searched so that `\d+` cannot match half
// of a number that is still arriving; use ExpectPrompt for text without a newline. It fails early
// when the guest panics or QEMU exits, and when ctx ends.
func (v *VM) Expect(ctx context.Context, re *regexp.Regexp) ([]string, error) {
	return v.expect(ctx, re, false)
}

// ExpectPrompt waits for a literal text that may not be followed by a newline, such as
// "login: ".
func (v *VM) ExpectPrompt(ctx context.Context, s string) error {
	_, err := v.expect(ctx, regexp.MustCompile(regexp.QuoteMeta(s)), true)
	return err
}

// text returns the transcript after the cursor, without the unterminated line unless partial.
// The caller holds v.mu.
func (v *VM) textLocked(partial bool) string {
	text := v.con.text.String()[v.cursor:]
	if !partial {
		text = text[:strings.LastIndexByte(text, '\n')+1]
	}
	return text
}

func (v *VM) expect(ctx context.Context, re *regexp.Regexp, partial bool) ([]string, error) {
	for {
		v.mu.Lock()
		text := v.textLocked(partial)
		if loc := re.FindStringSubmatchIndex(text); loc != nil {
			// A panic before the match still fails: the match came from a dead system.
			if p := findPanic(text[:loc[0]]); p != "" {
				v.mu.Unlock()
				return nil, fmt.Errorf("waiting for %q: %w: %s", re, ErrPanic, p)
			}
			m := make([]string, len(loc)/2)
			for i := range m {
				if loc[2*i] >= 0 {
					m[i] = text[loc[2*i]:loc[2*i+1]]
				}
			}
			v.cursor += loc[1]
			v.mu.Unlock()
			return m, nil
		}
		if p := findPanic(text); p != "" {
			v.mu.Unlock()
			return nil, fmt.Errorf("waiting for %q: %w: %s", re, ErrPanic, p)
		}
		changed := v.changed
		v.mu.Unlock()
		select {
		case <-changed:
		case <-v.exited:
			// Output may have arrived together with the exit: look once more before failing.
			v.mu.Lock()
			found := re.MatchString(v.con.text.String()[v.cursor:])
			if found && !partial && !re.MatchString(v.textLocked(false)) {
				// The match is in a final line without a newline: QEMU is gone, take it as is.
				v.con.text.WriteByte('\n')
			}
			v.mu.Unlock()
			if found {
				continue
			}
			return nil, fmt.Errorf("waiting for %q: %w (%s)", re, ErrExited, v.exitReason())
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for %q after %v: %w", re, v.Elapsed().Round(time.Second), ctx.Err())
		}
	}
}

// ExpectString waits for a literal text (see Expect).
func (v *VM) ExpectString(ctx context.Context, s string) error {
	_, err := v.Expect(ctx, regexp.MustCompile(regexp.QuoteMeta(s)))
	return err
}

// Seen reports whether s appeared anywhere in the console so far.
func (v *VM) Seen(s string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return strings.Contains(v.con.text.String(), s)
}

// Transcript returns the whole cleaned console text so far.
func (v *VM) Transcript() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.con.text.String()
}

// Lines returns the completed console lines so far.
func (v *VM) Lines() []Line {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]Line(nil), v.con.lines...)
}

// Tail returns the last n console lines with timestamps, plus QEMU's stderr and exit state:
// what a failing test prints.
func (v *VM) Tail(n int) string {
	v.mu.Lock()
	lines := v.con.tail(n)
	stderr := v.stderr.String()
	v.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "--- last %d console lines (t=%v, %s) ---\n", n, v.Elapsed().Round(time.Millisecond), v.exitReason())
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	if stderr != "" {
		fmt.Fprintf(&b, "--- qemu stderr ---\n%s", stderr)
	}
	return b.String()
}

func (v *VM) exitReason() string {
	select {
	case <-v.exited:
	default:
		return "running"
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	s := "exited"
	if v.waitErr != nil {
		s = fmt.Sprintf("exited: %v", v.waitErr)
	}
	if v.killed != "" {
		s += ", killed: " + v.killed
	}
	return s
}

// Write sends text to the guest's serial console (keyboard input for a getty or shell).
func (v *VM) Write(s string) error {
	if _, err := io.WriteString(v.stdin, s); err != nil {
		return fmt.Errorf("vm: write to serial console: %w", err)
	}
	return nil
}

// Wait waits for QEMU to exit (the guest powered off, or a panic with -no-reboot).
func (v *VM) Wait(ctx context.Context) error {
	select {
	case <-v.exited:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for the VM to exit after %v: %w", v.Elapsed().Round(time.Second), ctx.Err())
	}
}

// Exited reports whether QEMU has exited.
func (v *VM) Exited() bool {
	select {
	case <-v.exited:
		return true
	default:
		return false
	}
}

// RemoveDisk hot-unplugs the disk with the given ID through QMP and waits until QEMU reports the
// device gone (the guest acknowledges the ACPI/PCIe eject request).
func (v *VM) RemoveDisk(ctx context.Context, id string) error {
	if err := v.qmp.connect(ctx); err != nil {
		return err
	}
	if _, err := v.qmp.execute(ctx, "device_del", map[string]any{"id": id}); err != nil {
		return fmt.Errorf("vm: device_del %s: %w", id, err)
	}
	if err := v.qmp.waitEvent(ctx, "DEVICE_DELETED", func(data map[string]any) bool { return data["device"] == id }); err != nil {
		return fmt.Errorf("vm: waiting for %s to be unplugged: %w", id, err)
	}
	return nil
}

// QMP runs one QMP command and returns its "return" value as raw JSON.
func (v *VM) QMP(ctx context.Context, command string, args map[string]any) ([]byte, error) {
	if err := v.qmp.connect(ctx); err != nil {
		return nil, err
	}
	return v.qmp.execute(ctx, command, args)
}
