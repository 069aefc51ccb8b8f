package kmod_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ramboot/ramboot/internal/kmod"
	"github.com/ramboot/ramboot/internal/kmod/kmodtest"
)

func virtioIndex(t *testing.T) (string, *kmod.Index) {
	t.Helper()
	dir := t.TempDir()
	mods, builtin := kmodtest.VirtioTree()
	if err := kmodtest.WriteTree(dir, mods, builtin); err != nil {
		t.Fatal(err)
	}
	if err := kmod.BuildIndex(dir); err != nil {
		t.Fatalf("BuildIndex(%s) = %v, want nil", dir, err)
	}
	ix, err := kmod.Load(dir)
	if err != nil {
		t.Fatalf("Load(%s) = %v, want nil", dir, err)
	}
	return dir, ix
}

func TestReadModinfo(t *testing.T) {
	dir := t.TempDir()
	mods := []kmodtest.Mod{
		{Path: "a/usb-storage.ko", Name: "usb_storage", Depends: []string{"usbcore", "scsi-mod"}, Aliases: []string{"usb:v*", "usb:x*"}},
		{Path: "a/nls_ascii.ko.gz", Name: "nls_ascii"},
		{Path: "a/old-style.ko"},
	}
	if err := kmodtest.WriteTree(dir, mods, nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		rel  string
		want kmod.Module
	}{
		{"a/usb-storage.ko", kmod.Module{Name: "usb_storage", Path: "a/usb-storage.ko", Depends: []string{"usbcore", "scsi_mod"}, Aliases: []string{"usb:v*", "usb:x*"}}},
		{"a/nls_ascii.ko.gz", kmod.Module{Name: "nls_ascii", Path: "a/nls_ascii.ko.gz"}},
		{"a/old-style.ko", kmod.Module{Name: "old_style", Path: "a/old-style.ko"}},
	}
	for _, tt := range tests {
		got, err := kmod.ReadModinfo(filepath.Join(dir, tt.rel), tt.rel)
		if err != nil {
			t.Errorf("ReadModinfo(%s) = %v, want nil error", tt.rel, err)
			continue
		}
		got.Size = 0
		if diff := cmp.Diff(tt.want, *got); diff != "" {
			t.Errorf("ReadModinfo(%s) mismatch (-want +got):\n%s", tt.rel, diff)
		}
	}
}

func TestReadModinfoErrors(t *testing.T) {
	dir := t.TempDir()
	notELF := filepath.Join(dir, "junk.ko")
	os.WriteFile(notELF, []byte("this is not an ELF file at all, not even close....................."), 0o644)
	badGz := filepath.Join(dir, "bad.ko.gz")
	os.WriteFile(badGz, []byte("nope"), 0o644)
	for _, f := range []string{notELF, badGz, filepath.Join(dir, "missing.ko")} {
		_, err := kmod.ReadModinfo(f, filepath.Base(f))
		if err == nil || !strings.Contains(err.Error(), filepath.Base(f)) {
			t.Errorf("ReadModinfo(%s) = %v, want an error naming the file", f, err)
		}
	}
}

func TestModulesDepFormat(t *testing.T) {
	dir, _ := virtioIndex(t)
	dep, err := os.ReadFile(filepath.Join(dir, "modules.dep"))
	if err != nil {
		t.Fatal(err)
	}
	// depmod's format: transitive deps, the one to load first last; no-dep modules end in ':'.
	for _, want := range []string{
		"kernel/drivers/scsi/sr_mod.ko: kernel/drivers/cdrom/cdrom.ko kernel/drivers/scsi/scsi_mod.ko kernel/drivers/scsi/scsi_common.ko\n",
		"kernel/fs/fat/fat.ko:\n",
		"kernel/fs/fat/vfat.ko: kernel/fs/fat/fat.ko\n",
		"kernel/fs/squashfs/squashfs.ko:\n",
	} {
		if !strings.Contains(string(dep), want) {
			t.Errorf("modules.dep lacks line %q; got:\n%s", want, dep)
		}
	}
	alias, err := os.ReadFile(filepath.Join(dir, "modules.alias"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "alias virtio:d00000002v* virtio_blk\n"; !strings.Contains(string(alias), want) {
		t.Errorf("modules.alias lacks %q; got:\n%s", want, alias)
	}
}

func TestResolve(t *testing.T) {
	_, ix := virtioIndex(t)
	tests := []struct {
		name string
		want []string
	}{
		{"virtio_blk", []string{"kernel/drivers/virtio/virtio.ko", "kernel/drivers/virtio/virtio_ring.ko", "kernel/drivers/block/virtio_blk.ko"}},
		{"virtio_pci", []string{
			"kernel/drivers/virtio/virtio.ko", "kernel/drivers/virtio/virtio_ring.ko",
			"kernel/drivers/virtio/virtio_pci_legacy_dev.ko", "kernel/drivers/virtio/virtio_pci_modern_dev.ko",
			"kernel/drivers/virtio/virtio_pci.ko"}},
		{"sr_mod", []string{"kernel/drivers/scsi/scsi_common.ko", "kernel/drivers/scsi/scsi_mod.ko", "kernel/drivers/cdrom/cdrom.ko", "kernel/drivers/scsi/sr_mod.ko"}},
		{"usb-storage", []string{
			"kernel/drivers/usb/common/usb-common.ko", "kernel/drivers/usb/core/usbcore.ko",
			"kernel/drivers/scsi/scsi_common.ko", "kernel/drivers/scsi/scsi_mod.ko",
			"kernel/drivers/usb/storage/usb-storage.ko"}},
		{"nls_ascii", []string{"kernel/fs/nls/nls_ascii.ko.gz"}},
		{"squashfs", []string{"kernel/fs/squashfs/squashfs.ko"}},
		{"ext4", nil}, // built in
	}
	for _, tt := range tests {
		got, err := ix.Resolve(tt.name)
		if err != nil {
			t.Errorf("Resolve(%q) = %v, want nil error", tt.name, err)
			continue
		}
		// Any order is valid as long as every module comes after its dependencies; check the
		// exact set and the dependency constraint rather than one topological order.
		if diff := cmp.Diff(sorted(tt.want), sorted(got)); diff != "" {
			t.Errorf("Resolve(%q) set mismatch (-want +got):\n%s", tt.name, diff)
		}
		if len(got) > 0 && got[len(got)-1] != tt.want[len(tt.want)-1] {
			t.Errorf("Resolve(%q) last = %s, want %s", tt.name, got[len(got)-1], tt.want[len(tt.want)-1])
		}
	}
	order, _ := ix.Resolve("usb_storage")
	pos := map[string]int{}
	for i, p := range order {
		pos[p] = i
	}
	for _, c := range [][2]string{
		{"kernel/drivers/usb/common/usb-common.ko", "kernel/drivers/usb/core/usbcore.ko"},
		{"kernel/drivers/scsi/scsi_common.ko", "kernel/drivers/scsi/scsi_mod.ko"},
	} {
		if pos[c[0]] >= pos[c[1]] {
			t.Errorf("Resolve(usb_storage) = %v, want %s before %s", order, c[0], c[1])
		}
	}
	if _, err := ix.Resolve("no_such_module"); !errors.Is(err, kmod.ErrNotFound) {
		t.Errorf("Resolve(no_such_module) = %v, want ErrNotFound", err)
	}
	if !ix.Has("ext4") || !ix.Builtin("ext4") || ix.Builtin("vfat") || !ix.Has("usb-storage") || ix.Has("nope") {
		t.Errorf("Has/Builtin wrong: Has(ext4)=%v Builtin(ext4)=%v Builtin(vfat)=%v Has(usb-storage)=%v Has(nope)=%v",
			ix.Has("ext4"), ix.Builtin("ext4"), ix.Builtin("vfat"), ix.Has("usb-storage"), ix.Has("nope"))
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestMatchAlias(t *testing.T) {
	_, ix := virtioIndex(t)
	tests := []struct {
		modalias string
		want     []string
	}{
		{"virtio:d00000002v00001AF4", []string{"virtio_blk"}},
		{"virtio:d00000004v00001AF4", []string{"virtio_rng"}},
		{"virtio:d00000001v00001AF4", nil},
		{"pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00", []string{"virtio_pci"}},
		{"pci:v00008086d00007010sv00001AF4sd00001100bc01sc01i80", nil},
		{"scsi:t-0x05", []string{"sr_mod"}},
		{"usb:v0781p5567d0100dc00dsc00dp00ic08isc06ip50in00", []string{"usb_storage"}},
		{"fs-vfat", []string{"vfat"}},
		{"devname:loop-control", []string{"loop"}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, ix.MatchAlias(tt.modalias)); diff != "" {
			t.Errorf("MatchAlias(%q) mismatch (-want +got):\n%s", tt.modalias, diff)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := kmod.Load(dir); err == nil || !strings.Contains(err.Error(), "modules.dep") {
		t.Errorf("Load(empty dir) = %v, want an error naming modules.dep", err)
	}
	os.WriteFile(filepath.Join(dir, "modules.dep"), []byte("kernel/a.ko:\ngarbage line\n"), 0o644)
	if _, err := kmod.Load(dir); err == nil || !strings.Contains(err.Error(), "modules.dep:2") {
		t.Errorf("Load(bad modules.dep) = %v, want an error naming modules.dep:2", err)
	}
	os.WriteFile(filepath.Join(dir, "modules.dep"), []byte("kernel/a.ko: kernel/b.ko\n"), 0o644)
	ix, err := kmod.Load(dir)
	if err != nil {
		t.Fatalf("Load = %v, want nil", err)
	}
	if _, err := ix.Resolve("a"); err == nil || !strings.Contains(err.Error(), "kernel/b.ko") {
		t.Errorf("Resolve(a) with dangling dep = %v, want an error naming kernel/b.ko", err)
	}
}

func TestClosure(t *testing.T) {
	dir := t.TempDir()
	mods, builtin := kmodtest.VirtioTree()
	if err := kmodtest.WriteTree(dir, mods, builtin); err != nil {
		t.Fatal(err)
	}
	tree, err := kmod.OpenTree(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, missing, err := tree.Closure([]string{"vfat", "ext4", "ahci", "nls-cp437"})
	if err != nil {
		t.Fatalf("Closure = %v, want nil", err)
	}
	var names []string
	for _, m := range got {
		names = append(names, m.Name)
	}
	if diff := cmp.Diff([]string{"fat", "vfat", "nls_cp437"}, names); diff != "" {
		t.Errorf("Closure(vfat ext4 ahci nls-cp437) modules mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"ahci"}, missing); diff != "" {
		t.Errorf("Closure missing mismatch (-want +got):\n%s", diff)
	}

	// A dependency that is neither a file nor built in is a broken tree, not an optional module.
	os.Remove(filepath.Join(dir, "kernel/fs/fat/fat.ko"))
	tree, err = kmod.OpenTree(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := tree.Closure([]string{"vfat"}); err == nil || !strings.Contains(err.Error(), "fat") {
		t.Errorf("Closure(vfat) without fat.ko = %v, want an error naming fat", err)
	}
}
