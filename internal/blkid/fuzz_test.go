package blkid_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ramboot/ramboot/internal/blkid"
)

// FuzzProbe: media are untrusted input; Probe must never panic or hang, and must either
// identify a filesystem or say ErrUnknown. The seeds are the synthetic superblocks of the table
// tests (plain `go test` runs them; `go test -fuzz FuzzProbe` explores further).
func FuzzProbe(f *testing.F) {
	f.Add(isoImage(isoSpec{label: "ALPINE", created: "2024012612354300"}))
	f.Add(isoImage(isoSpec{label: "ALPINE-STD_3.19.1 X86_64", joliet: "alpine-std 3.19."}))
	f.Add(fat16Image("BOOT", [][]byte{dirEntry("ROOT", 0x08)}, 0xF8))
	f.Add(extImage(0x4, 0x2|0x40, 0x1))
	f.Add([]byte("hsqs"))
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := blkid.Probe(bytes.NewReader(data))
		if err != nil && !errors.Is(err, blkid.ErrUnknown) {
			t.Fatalf("Probe() error %v from an in-memory reader, want nil or ErrUnknown", err)
		}
		if err == nil && info.Type == "" {
			t.Fatalf("Probe() = %+v with no error and no type", info)
		}
	})
}
