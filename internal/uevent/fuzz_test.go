package uevent_test

import (
	"testing"

	"github.com/ramboot/ramboot/internal/uevent"
)

// FuzzParse: Parse must not panic on any datagram, and whatever it accepts must survive a
// Format/Parse round trip with the same action, devpath and environment.
func FuzzParse(f *testing.F) {
	f.Add(msg("add@/devices/virtual/block/loop0", "ACTION=add", "SUBSYSTEM=block", "SEQNUM=1"))
	f.Add(msg("libudev", "x"))
	f.Add([]byte("remove@/x\x00A=\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := uevent.Parse(data)
		if err != nil {
			return
		}
		again, err := uevent.Parse(uevent.Format(ev))
		if err != nil {
			t.Fatalf("Parse(Format(%+v)) error: %v", ev, err)
		}
		if again.Action != ev.Action || again.DevPath != ev.DevPath || len(again.Env) != len(ev.Env) {
			t.Fatalf("Parse(Format(ev)) = %+v, want %+v", again, ev)
		}
	})
}
