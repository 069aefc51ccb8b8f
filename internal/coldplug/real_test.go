package coldplug_test

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ramboot/ramboot/internal/coldplug"
	"github.com/ramboot/ramboot/internal/kmod"
	"github.com/ramboot/ramboot/internal/kmod/kmodtest"
	"github.com/ramboot/ramboot/internal/testdata"
	"github.com/ramboot/ramboot/internal/uevent"
)

// realIndex indexes Debian's cloud kernel modules (scripts/fetch-kernel.sh) into a temporary
// directory that links to the real module files, leaving the fetched tree untouched.
func realIndex(t *testing.T) *kmod.Index {
	t.Helper()
	root, err := testdata.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir, why := kmodtest.RealModulesDir(root, "x86_64")
	if dir == "" {
		t.Skipf("prerequisite missing: %s", why)
	}
	tree, err := kmod.OpenTree(dir)
	if err != nil {
		t.Fatal(err)
	}
	mods, err := tree.All()
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if err := kmod.WriteIndex(out, mods); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "modules.builtin"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "modules.builtin"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "kernel"), filepath.Join(out, "kernel")); err != nil {
		t.Fatal(err)
	}
	ix, err := kmod.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

// TestRealKernelQEMUDevices coldplugs the devices of a QEMU x86_64 `pc` machine with a virtio
// disk and an IDE CD against the real Debian module index; the fake kernel enforces dependency
// order. Expected chains are those of notes/qemu-and-libraries.md §2.5.
func TestRealKernelQEMUDevices(t *testing.T) {
	ix := realIndex(t)
	sys := t.TempDir()
	addDevice(t, sys, "pci", "0000:00:00.0", pciHost)
	addDevice(t, sys, "pci", "0000:00:01.1", "pci:v00008086d00007010sv00001AF4sd00001100bc01sc01i80") // PIIX3 IDE
	addDevice(t, sys, "pci", "0000:00:04.0", pciVirtioBlk)
	k := newFakeKernel(t, ix, sys)
	l := coldplug.New(coldplug.Options{Index: ix, SysRoot: sys, Loader: k})

	rep := l.Coldplug()
	for _, ld := range rep.Loaded {
		if ld.Err != "" {
			t.Errorf("Coldplug() %s: %s", ld.Module, ld.Err)
		}
	}
	got := map[string]bool{}
	for _, n := range k.names() {
		got[n] = true
	}
	for _, m := range []string{"virtio_pci", "virtio_blk", "libata", "ata_piix", "scsi_mod"} {
		if !got[m] {
			t.Errorf("Coldplug() did not load %s; loaded %q", m, k.names())
		}
	}

	// The CD appears as a SCSI device once ata_piix probes: a uevent.
	rep = l.HandleEvent(uevent.Event{Action: "add", Subsystem: "scsi", Modalias: "scsi:t-0x05"})
	if d := cmp.Diff([]string{"cdrom", "sr_mod"}, loadedNames(rep)); d != "" {
		t.Errorf("HandleEvent(scsi:t-0x05) loads mismatch (-want +got):\n%s", d)
	}
	before := len(k.names())
	if err := l.LoadFS("vfat"); err != nil {
		t.Errorf("LoadFS(vfat) error: %v", err)
	}
	if d := cmp.Diff([]string{"fat", "vfat", "nls_cp437", "nls_ascii"}, k.names()[before:]); d != "" {
		t.Errorf("LoadFS(vfat) loads mismatch (-want +got):\n%s", d)
	}
	before = len(k.names())
	if err := l.LoadFS("iso9660"); err != nil {
		t.Errorf("LoadFS(iso9660) error: %v", err)
	}
	if d := cmp.Diff([]string{"isofs"}, k.names()[before:]); d != "" { // cdrom already in
		t.Errorf("LoadFS(iso9660) loads mismatch (-want +got):\n%s", d)
	}
	// ext4 is built into the cloud kernel: nothing to load, not an error.
	before = len(k.names())
	if err := l.LoadFS("ext4"); err != nil || len(k.names()) != before {
		t.Errorf("LoadFS(ext4) = %v, loaded %q; want nil and nothing (built in)", err, k.names()[before:])
	}
}

type recorder struct {
	mu    sync.Mutex // Coldplug loads in parallel
	paths []string
}

func (r *recorder) LoadModule(path, params string) error {
	if _, err := os.Stat(path); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.paths = append(r.paths, path)
	return nil
}

// TestColdplugHostSysfs walks this machine's real /sys against the real Debian index with a
// recording loader (nothing is loaded): it measures the walk and checks every chosen module
// resolves to an existing file.
func TestColdplugHostSysfs(t *testing.T) {
	if _, err := os.Stat("/sys/bus"); err != nil {
		t.Skipf("prerequisite missing: sysfs at /sys: %v", err)
	}
	ix := realIndex(t)
	r := &recorder{}
	l := coldplug.New(coldplug.Options{Index: ix, SysRoot: "/", Loader: r})
	start := time.Now()
	rep := l.Coldplug()
	took := time.Since(start)
	t.Logf("host sysfs: %d modaliases, %d unmatched, %d module files chosen in %v", rep.Modaliases, rep.Unmatched, len(r.paths), took)
	if rep.Modaliases == 0 {
		t.Errorf("Coldplug() on the host saw no modalias under /sys/bus/*/devices")
	}
	for _, ld := range rep.Loaded {
		if ld.Err != "" {
			t.Errorf("Coldplug() %s: %s", ld.Module, ld.Err)
		}
	}
	if len(rep.Errors) > 0 {
		t.Errorf("Coldplug() errors = %q, want none", rep.Errors)
	}
}
