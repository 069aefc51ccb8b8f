package coldplug_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/ramboot/ramboot/internal/coldplug"
	"github.com/ramboot/ramboot/internal/kmod"
	"github.com/ramboot/ramboot/internal/kmod/kmodtest"
	"github.com/ramboot/ramboot/internal/uevent"
)

// Modaliases as QEMU's q35/pc machines present them (virtio-blk-pci, virtio-rng-pci, the PIIX
// host bridge that no module claims).
const (
	pciVirtioBlk = "pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00"
	pciVirtioRng = "pci:v00001AF4d00001005sv00001AF4sd00000004bc00scFFi00"
	pciHost      = "pci:v00008086d00001237sv00001AF4sd00001100bc06sc00i00"
	virtioBlk    = "virtio:d00000002v00001AF4"
	virtioRng    = "virtio:d00000004v00001AF4"
)

// fixture builds a module tree (kmod's Debian-modelled virtio tree, indexed by kmod.BuildIndex)
// and an empty sysroot.
func fixture(t *testing.T) (*kmod.Index, string) {
	t.Helper()
	modDir := filepath.Join(t.TempDir(), "lib", "modules", "6.1.0-test")
	mods, builtin := kmodtest.VirtioTree()
	if err := kmodtest.WriteTree(modDir, mods, builtin); err != nil {
		t.Fatal(err)
	}
	if err := kmod.BuildIndex(modDir); err != nil {
		t.Fatal(err)
	}
	ix, err := kmod.Load(modDir)
	if err != nil {
		t.Fatal(err)
	}
	return ix, t.TempDir()
}

func addDevice(t *testing.T, sysroot, bus, dev, modalias string) {
	t.Helper()
	d := filepath.Join(sysroot, "sys", "bus", bus, "devices", dev)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "modalias"), []byte(modalias+"\n"), 0o444); err != nil {
		t.Fatal(err)
	}
}

// fakeKernel records LoadModule calls and behaves like the kernel where it matters: a module
// whose dependencies are not loaded fails ("Unknown symbol"), a module loaded twice gets EEXIST,
// and binding virtio_pci creates the virtio child devices in sysfs.
type fakeKernel struct {
	t       *testing.T
	ix      *kmod.Index
	sysroot string
	fail    map[string]error // module name → error to return

	mu     sync.Mutex
	loaded map[string]bool
	calls  []string // "name params"
}

func newFakeKernel(t *testing.T, ix *kmod.Index, sysroot string) *fakeKernel {
	return &fakeKernel{t: t, ix: ix, sysroot: sysroot, fail: map[string]error{}, loaded: map[string]bool{}}
}

func (k *fakeKernel) LoadModule(path, params string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	rel, err := filepath.Rel(k.ix.Dir(), path)
	if err != nil || strings.HasPrefix(rel, "..") {
		return fmt.Errorf("module path %s outside %s", path, k.ix.Dir())
	}
	if _, err := os.Stat(path); err != nil {
		return err
	}
	name := coldplug.NormName(rel)
	call := name
	if params != "" {
		call += " " + params
	}
	k.calls = append(k.calls, call)
	if err := k.fail[name]; err != nil {
		if errors.Is(err, unix.EEXIST) {
			k.loaded[name] = true // loaded behind our back
		}
		return err
	}
	if k.loaded[name] {
		return unix.EEXIST
	}
	deps, err := k.ix.Resolve(name)
	if err != nil {
		return err
	}
	for _, d := range deps[:len(deps)-1] {
		if !k.loaded[coldplug.NormName(d)] {
			return fmt.Errorf("%s: Unknown symbol (dependency %s not loaded): %w", name, d, unix.ENOENT)
		}
	}
	k.loaded[name] = true
	if name == "virtio_pci" {
		addDevice(k.t, k.sysroot, "virtio", "virtio0", virtioBlk)
		addDevice(k.t, k.sysroot, "virtio", "virtio1", virtioRng)
	}
	return nil
}

func (k *fakeKernel) names() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.calls...)
}

func loadedNames(rep coldplug.Report) []string {
	var out []string
	for _, l := range rep.Loaded {
		out = append(out, l.Module)
	}
	return out
}

func TestColdplugFixedPoint(t *testing.T) {
	ix, sys := fixture(t)
	addDevice(t, sys, "pci", "0000:00:00.0", pciHost)
	addDevice(t, sys, "pci", "0000:00:04.0", pciVirtioBlk)
	addDevice(t, sys, "pci", "0000:00:05.0", pciVirtioRng)
	k := newFakeKernel(t, ix, sys)
	l := coldplug.New(coldplug.Options{Index: ix, SysRoot: sys, Loader: k})

	rep := l.Coldplug()
	// One round: the PCI devices → virtio_pci, and the drivers of the virtio devices it will
	// register (predicted from the PCI IDs), in parallel; the report lists them in plan order
	// (names sorted, each after the dependencies not already listed). The fake kernel rejects
	// a module loaded before its dependencies, so any call order it accepted is a valid one.
	var want []string
	have := map[string]bool{}
	for _, name := range []string{"virtio_blk", "virtio_pci", "virtio_rng"} {
		deps, err := ix.Resolve(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range deps {
			if n := coldplug.NormName(d); !have[n] {
				have[n] = true
				want = append(want, n)
			}
		}
	}
	if d := cmp.Diff(want, loadedNames(rep)); d != "" {
		t.Errorf("Coldplug() report mismatch (-want +got):\n%s", d)
	}
	calls := k.names()
	sort.Strings(calls)
	sorted := append([]string(nil), want...)
	sort.Strings(sorted)
	if d := cmp.Diff(sorted, calls); d != "" {
		t.Errorf("Coldplug() LoadModule calls mismatch (-want +got):\n%s", d)
	}
	// The virtio devices' own modaliases were predicted, so the second scan round matched
	// nothing new: 3 distinct modaliases were matched from sysfs.
	if rep.Modaliases != 3 || rep.Unmatched != 1 || len(rep.Errors) != 0 {
		t.Errorf("Coldplug() = %d modaliases, %d unmatched, errors %q; want 3, 1, none", rep.Modaliases, rep.Unmatched, rep.Errors)
	}
	for _, ld := range rep.Loaded {
		if ld.Err != "" {
			t.Errorf("Coldplug() loaded %s with error %s", ld.Module, ld.Err)
		}
	}
	if got := rep.Loaded[0].Reason; got != "dependency of virtio_blk" {
		t.Errorf("Coldplug() reason for %s = %q, want %q", rep.Loaded[0].Module, got, "dependency of virtio_blk")
	}

	// A second walk finds nothing new and loads nothing.
	if rep := l.Coldplug(); len(rep.Loaded) != 0 || rep.Modaliases != 0 {
		t.Errorf("second Coldplug() = %+v, want nothing to do", rep)
	}
}

func TestBlacklistAndExplicit(t *testing.T) {
	ix, sys := fixture(t)
	addDevice(t, sys, "pci", "0000:00:04.0", pciVirtioBlk)
	addDevice(t, sys, "pci", "0000:00:05.0", pciVirtioRng)
	k := newFakeKernel(t, ix, sys)
	l := coldplug.New(coldplug.Options{Index: ix, SysRoot: sys, Loader: k,
		Blacklist: []string{"virtio-rng", " loop "}, Params: map[string]string{"loop": "max_loop=8"}})

	rep := l.Coldplug()
	if d := cmp.Diff([]string{"virtio_rng (alias " + virtioRng + ")"}, rep.Blacklisted); d != "" {
		t.Errorf("Coldplug() blacklisted mismatch (-want +got):\n%s", d)
	}
	for _, n := range k.names() {
		if n == "virtio_rng" {
			t.Errorf("Coldplug() loaded blacklisted virtio_rng")
		}
	}
	// modules= is explicit: the blacklist does not apply (modprobe semantics), params are passed.
	rep = l.LoadNamed("loop", "sd-mod")
	if d := cmp.Diff([]string{"loop"}, loadedNames(rep)); d != "" {
		t.Errorf("LoadNamed(loop, sd-mod) loaded mismatch (-want +got):\n%s", d)
	}
	if calls := k.names(); calls[len(calls)-1] != "loop max_loop=8" {
		t.Errorf("LoadNamed(loop) call = %q, want %q", calls[len(calls)-1], "loop max_loop=8")
	}
	if len(rep.Errors) != 1 || !strings.Contains(rep.Errors[0], "sd_mod") || !strings.Contains(rep.Errors[0], "not found") {
		t.Errorf("LoadNamed(sd-mod) errors = %q, want one naming sd_mod as not found", rep.Errors)
	}
}

func TestLoadFS(t *testing.T) {
	tests := []struct {
		fstype string
		want   []string
	}{
		{"vfat", []string{"fat", "vfat", "nls_cp437", "nls_ascii"}},
		{"iso9660", []string{"cdrom", "isofs"}},
		{"ext4", nil}, // built in
		{"squashfs", []string{"squashfs"}},
	}
	for _, tc := range tests {
		ix, sys := fixture(t)
		k := newFakeKernel(t, ix, sys)
		l := coldplug.New(coldplug.Options{Index: ix, SysRoot: sys, Loader: k})
		if err := l.LoadFS(tc.fstype); err != nil {
			t.Errorf("LoadFS(%s) error: %v", tc.fstype, err)
		}
		if d := cmp.Diff(tc.want, k.names()); d != "" {
			t.Errorf("LoadFS(%s) loads mismatch (-want +got):\n%s", tc.fstype, d)
		}
		// Idempotent: the second call loads nothing.
		if err := l.LoadFS(tc.fstype); err != nil || len(k.names()) != len(tc.want) {
			t.Errorf("second LoadFS(%s) = %v with %d loads, want nil and %d", tc.fstype, err, len(k.names()), len(tc.want))
		}
	}
}

func TestLoadErrors(t *testing.T) {
	ix, sys := fixture(t)
	k := newFakeKernel(t, ix, sys)
	k.fail["nls_cp437"] = unix.ENOEXEC
	k.fail["fat"] = unix.EEXIST // already loaded (e.g. by the kernel): success
	l := coldplug.New(coldplug.Options{Index: ix, SysRoot: sys, Loader: k})
	err := l.LoadFS("vfat")
	if err == nil || !strings.Contains(err.Error(), "nls_cp437.ko") || !strings.Contains(err.Error(), "exec format error") {
		t.Errorf("LoadFS(vfat) error = %v, want one naming nls_cp437.ko and the exec format error", err)
	}
	if strings.Contains(err.Error(), "fat.ko:") {
		t.Errorf("LoadFS(vfat) error = %v, want EEXIST for fat.ko treated as loaded", err)
	}
}

func TestHandleEvent(t *testing.T) {
	ix, sys := fixture(t)
	k := newFakeKernel(t, ix, sys)
	l := coldplug.New(coldplug.Options{Index: ix, SysRoot: sys, Loader: k})
	cd := uevent.Event{Action: "add", DevPath: "/devices/pci0000:00/0000:00:01.1/ata2/host1/target1:0:0/1:0:0:0",
		Subsystem: "scsi", Modalias: "scsi:t-0x05"}
	tests := []struct {
		name string
		ev   uevent.Event
		want []string
	}{
		{"cdrom add", cd, []string{"scsi_common", "scsi_mod", "cdrom", "sr_mod"}},
		{"same alias again", cd, nil},
		{"bind carries the alias again", uevent.Event{Action: "bind", Modalias: virtioBlk}, nil},
		{"no modalias", uevent.Event{Action: "add", Subsystem: "block"}, nil},
		{"usb storage", uevent.Event{Action: "add", Modalias: "usb:v46F4p0001d0000dc00dsc00dp00ic08isc06ip50in00"},
			[]string{"usb_common", "usbcore", "usb_storage"}}, // scsi_mod already loaded
	}
	for _, tc := range tests {
		rep := l.HandleEvent(tc.ev)
		if d := cmp.Diff(tc.want, loadedNames(rep)); d != "" {
			t.Errorf("HandleEvent(%s) loads mismatch (-want +got):\n%s", tc.name, d)
		}
	}
}

// TestConcurrentLoads runs the sysfs walk and event handling at once (as the boot does); the
// fake kernel fails any module whose dependencies are not in yet, and each file loads once.
func TestConcurrentLoads(t *testing.T) {
	ix, sys := fixture(t)
	addDevice(t, sys, "pci", "0000:00:04.0", pciVirtioBlk)
	k := newFakeKernel(t, ix, sys)
	l := coldplug.New(coldplug.Options{Index: ix, SysRoot: sys, Loader: k})
	var wg sync.WaitGroup
	reps := make([]coldplug.Report, 4)
	wg.Add(4)
	go func() { defer wg.Done(); reps[0] = l.Coldplug() }()
	go func() { defer wg.Done(); reps[1] = l.HandleEvent(uevent.Event{Action: "add", Modalias: virtioBlk}) }()
	go func() { defer wg.Done(); reps[2] = l.HandleEvent(uevent.Event{Action: "add", Modalias: virtioRng}) }()
	go func() { defer wg.Done(); reps[3] = l.LoadNamed("virtio_pci", "virtio_blk") }()
	wg.Wait()
	seen := map[string]bool{}
	for _, n := range k.names() {
		if seen[n] {
			t.Errorf("module %s loaded twice: %q", n, k.names())
		}
		seen[n] = true
	}
	for i, r := range reps {
		for _, ld := range r.Loaded {
			if ld.Err != "" {
				t.Errorf("report %d: %s failed: %s", i, ld.Module, ld.Err)
			}
		}
	}
	for _, m := range []string{"virtio_pci", "virtio_blk", "virtio_rng"} {
		if !seen[m] {
			t.Errorf("module %s never loaded; calls %q", m, k.names())
		}
	}
}

// blockingKernel makes usb_storage's load wait until virtio_blk has loaded, like a slow driver
// probe: only parallel loading lets the boot disk's driver through meanwhile.
type blockingKernel struct {
	mu          sync.Mutex
	calls       []string
	virtioBlkIn chan struct{}
	waited      time.Duration
}

func (k *blockingKernel) LoadModule(path, params string) error {
	name := coldplug.NormName(path)
	k.mu.Lock()
	k.calls = append(k.calls, name)
	k.mu.Unlock()
	switch name {
	case "virtio_blk":
		close(k.virtioBlkIn)
	case "usb_storage":
		start := time.Now()
		select {
		case <-k.virtioBlkIn:
		case <-time.After(300 * time.Millisecond):
		}
		k.waited = time.Since(start)
	}
	return nil
}

func TestParallelLoading(t *testing.T) {
	for _, sequential := range []bool{false, true} {
		ix, sys := fixture(t)
		addDevice(t, sys, "usb", "1-1:1.0", "usb:v46F4p0001d0000dc00dsc00dp00ic08isc06ip50in00")
		addDevice(t, sys, "virtio", "virtio0", virtioBlk)
		k := &blockingKernel{virtioBlkIn: make(chan struct{})}
		l := coldplug.New(coldplug.Options{Index: ix, SysRoot: sys, Loader: k, Sequential: sequential})
		rep := l.Coldplug()
		// usb_storage sorts first; sequentially it holds virtio_blk up for the full 300 ms.
		blocked := k.waited >= 300*time.Millisecond
		if blocked != sequential {
			t.Errorf("Coldplug(sequential=%v): usb_storage waited %v for virtio_blk, want blocked=%v", sequential, k.waited, sequential)
		}
		want := []string{"usb_common", "usbcore", "scsi_common", "scsi_mod", "usb_storage", "virtio_ring", "virtio", "virtio_blk"}
		got := loadedNames(rep)
		sort.Strings(got)
		sort.Strings(want)
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("Coldplug(sequential=%v) loaded mismatch (-want +got):\n%s", sequential, d)
		}
	}
}

// gateKernel holds every load of one module until release is closed, and fails another.
type gateKernel struct {
	gate    string
	started chan struct{} // closed when the gated load has begun
	release chan struct{}
	fail    map[string]error

	mu     sync.Mutex
	loaded map[string]bool
}

func (k *gateKernel) LoadModule(path, params string) error {
	name := coldplug.NormName(path)
	if name == k.gate {
		close(k.started)
		<-k.release
	}
	if err := k.fail[name]; err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.loaded[name] = true
	return nil
}

func (k *gateKernel) isLoaded(name string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.loaded[name]
}

// TestLoadFSWaitsForConcurrentLoad: a LoadFS for modules another goroutine is loading (the boot's
// vfat preload) must return only once they are in, and report that goroutine's failures; before,
// the second call returned at once because the modules were already "planned".
func TestLoadFSWaitsForConcurrentLoad(t *testing.T) {
	tests := []struct {
		name    string
		fail    map[string]error
		wantErr string // substring of the second LoadFS's error; "" = nil
	}{
		{"success", nil, ""},
		{"first load fails", map[string]error{"nls_cp437": unix.ENOEXEC}, "nls_cp437.ko"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ix, sys := fixture(t)
			k := &gateKernel{gate: "vfat", started: make(chan struct{}), release: make(chan struct{}),
				fail: tc.fail, loaded: map[string]bool{}}
			l := coldplug.New(coldplug.Options{Index: ix, SysRoot: sys, Loader: k})
			first := make(chan error, 1)
			go func() { first <- l.LoadFS("vfat") }()
			<-k.started // the preload is inside vfat's load
			second := make(chan error, 1)
			go func() { second <- l.LoadFS("vfat") }()
			select {
			case err := <-second:
				t.Fatalf("LoadFS(vfat) = %v while vfat was still loading, want it to wait", err)
			case <-time.After(100 * time.Millisecond):
			}
			close(k.release)
			err := <-second
			if err1 := <-first; (err1 == nil) != (tc.wantErr == "") {
				t.Errorf("first LoadFS(vfat) = %v, want error %q", err1, tc.wantErr)
			}
			for _, m := range []string{"fat", "vfat", "nls_ascii"} {
				if !k.isLoaded(m) {
					t.Errorf("after LoadFS(vfat) returned, %s is not loaded", m)
				}
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("second LoadFS(vfat) = %v, want nil", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("second LoadFS(vfat) = %v, want the first call's error naming %s", err, tc.wantErr)
			}
		})
	}
}

func TestVirtioChild(t *testing.T) {
	tests := []struct {
		pci, want string
		ok        bool
	}{
		{pciVirtioBlk, virtioBlk, true},
		{pciVirtioRng, virtioRng, true},
		// Modern (virtio 1.0-only) IDs: type = device - 0x1040 (0x1042 block, 0x1048 scsi).
		{"pci:v00001AF4d00001042sv00001AF4sd00001100bc01sc00i00", "virtio:d00000002v00001AF4", true},
		{"pci:v00001AF4d00001048sv00001AF4sd00001100bc01sc00i00", "virtio:d00000008v00001AF4", true},
		{"pci:v00001AF4d00001004sv00001AF4sd00000008bc01sc00i00", "virtio:d00000008v00001AF4", true},
		{pciHost, "", false},
		{"pci:v00001AF4d00001110sv00001AF4sd00001100bc05sc00i00", "", false}, // ivshmem: not virtio
		{"pci:v00001AF4d00001001sv00001AF4sd00000000bc01sc00i00", "", false}, // no device type
		{"virtio:d00000002v00001AF4", "", false},
		{"pci:garbage", "", false},
	}
	for _, tt := range tests {
		got, ok := coldplug.VirtioChild(tt.pci)
		if got != tt.want || ok != tt.ok {
			t.Errorf("VirtioChild(%q) = %q, %v, want %q, %v", tt.pci, got, ok, tt.want, tt.ok)
		}
	}
}

// TestColdplugPredictsVirtioDrivers: the virtio drivers load in the same round as virtio_pci
// (predicted from the PCI IDs), and the virtio devices' later uevents load nothing more.
func TestColdplugPredictsVirtioDrivers(t *testing.T) {
	ix, sys := fixture(t)
	addDevice(t, sys, "pci", "0000:00:02.0", pciVirtioBlk)
	k := newFakeKernel(t, ix, sys)
	l := coldplug.New(coldplug.Options{Index: ix, SysRoot: sys, Loader: k, Sequential: true})
	rep := l.HandleEvent(uevent.Event{Action: "add", Modalias: pciVirtioBlk})
	got := loadedNames(rep)
	if !contains(got, "virtio_blk") || !contains(got, "virtio_pci") {
		t.Errorf("loads for %s = %q, want both virtio_pci and virtio_blk in one round", pciVirtioBlk, got)
	}
	for _, ld := range rep.Loaded {
		if strings.HasPrefix(ld.Module, "virtio_blk") && !strings.Contains(ld.Reason, "virtio:d00000002") {
			t.Errorf("virtio_blk reason = %q, want the predicted alias", ld.Reason)
		}
	}
	ev := l.HandleEvent(uevent.Event{Action: "add", Modalias: virtioBlk})
	if len(ev.Loaded) != 0 || ev.Modaliases != 0 {
		t.Errorf("HandleEvent(%s) after prediction = %+v, want nothing to do", virtioBlk, ev)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
