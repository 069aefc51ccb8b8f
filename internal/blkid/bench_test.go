package blkid_test

import (
	"path/filepath"
	"testing"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/disk"
	"github.com/diskfs/go-diskfs/filesystem"

	"github.com/ramboot/ramboot/internal/blkid"
)

// BenchmarkProbeFileFAT32 measures a probe through the file system (open + a few reads), the cost
// per device at boot.
func BenchmarkProbeFileFAT32(b *testing.B) {
	img := filepath.Join(b.TempDir(), "fat.img")
	d, err := diskfs.Create(img, 40<<20, diskfs.SectorSizeDefault)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := d.CreateFilesystem(disk.FilesystemSpec{Partition: 0, FSType: filesystem.TypeFat32, VolumeLabel: "BENCH"}); err != nil {
		b.Fatal(err)
	}
	d.Close()
	b.ResetTimer()
	for b.Loop() {
		info, err := blkid.ProbeFile(img)
		if err != nil || info.Label != "BENCH" {
			b.Fatalf("ProbeFile() = %+v, %v", info, err)
		}
	}
}
