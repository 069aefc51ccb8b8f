package uevent_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ramboot/ramboot/internal/uevent"
)

func msg(parts ...string) []byte { return []byte(strings.Join(parts, "\x00") + "\x00") }

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want uevent.Event
	}{
		{
			// As the kernel sends it when virtio_blk binds (QEMU -drive if=virtio).
			name: "block disk",
			in: msg("add@/devices/pci0000:00/0000:00:04.0/virtio1/block/vda", "ACTION=add",
				"DEVPATH=/devices/pci0000:00/0000:00:04.0/virtio1/block/vda", "SUBSYSTEM=block", "MAJOR=253",
				"MINOR=0", "DEVNAME=vda", "DEVTYPE=disk", "DISKSEQ=1", "SEQNUM=1297"),
			want: uevent.Event{Action: "add", DevPath: "/devices/pci0000:00/0000:00:04.0/virtio1/block/vda",
				Subsystem: "block", DevName: "vda", DevType: "disk", Seqnum: 1297,
				Env: map[string]string{"ACTION": "add", "DEVPATH": "/devices/pci0000:00/0000:00:04.0/virtio1/block/vda",
					"SUBSYSTEM": "block", "MAJOR": "253", "MINOR": "0", "DEVNAME": "vda", "DEVTYPE": "disk",
					"DISKSEQ": "1", "SEQNUM": "1297"}},
		},
		{
			name: "modalias",
			in: msg("add@/devices/pci0000:00/0000:00:04.0/virtio1", "ACTION=add", "DEVPATH=/devices/pci0000:00/0000:00:04.0/virtio1",
				"SUBSYSTEM=virtio", "MODALIAS=virtio:d00000002v00001AF4", "SEQNUM=1290"),
			want: uevent.Event{Action: "add", DevPath: "/devices/pci0000:00/0000:00:04.0/virtio1", Subsystem: "virtio",
				Modalias: "virtio:d00000002v00001AF4", Seqnum: 1290,
				Env: map[string]string{"ACTION": "add", "DEVPATH": "/devices/pci0000:00/0000:00:04.0/virtio1",
					"SUBSYSTEM": "virtio", "MODALIAS": "virtio:d00000002v00001AF4", "SEQNUM": "1290"}},
		},
		{
			name: "header only, value with '=' inside",
			in:   msg("change@/devices/virtual/block/loop0", "SYNTH_ARG_X=a=b"),
			want: uevent.Event{Action: "change", DevPath: "/devices/virtual/block/loop0",
				Env: map[string]string{"SYNTH_ARG_X": "a=b"}},
		},
	}
	for _, tc := range tests {
		got, err := uevent.Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%s) error: %v", tc.name, err)
			continue
		}
		if d := cmp.Diff(tc.want, got); d != "" {
			t.Errorf("Parse(%s) mismatch (-want +got):\n%s", tc.name, d)
		}
		// Format is Parse's inverse on the environment.
		again, err := uevent.Parse(uevent.Format(got))
		if err != nil || !cmp.Equal(again, got) {
			t.Errorf("Parse(Format(%s)) = %+v, %v, want %+v", tc.name, again, err, got)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"libudev", append([]byte("libudev\x00"), 0xfe, 0xed, 0xca, 0xfe), "libudev"},
		{"no @", msg("add/devices/x", "A=b"), "malformed header"},
		{"empty devpath", msg("add@", "A=b"), "malformed header"},
		{"field without =", msg("add@/devices/x", "GARBAGE"), "malformed field"},
		{"bad seqnum", msg("add@/devices/x", "SEQNUM=12x"), "SEQNUM"},
	}
	for _, tc := range tests {
		_, err := uevent.Parse(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%s) error = %v, want one mentioning %q", tc.name, err, tc.want)
		}
	}
	if _, err := uevent.Parse(msg("libudev")); !errors.Is(err, uevent.ErrLibudev) {
		t.Errorf("Parse(libudev) error = %v, want ErrLibudev", err)
	}
}

func TestChanSource(t *testing.T) {
	ch := make(chan uevent.Event, 1)
	src := uevent.ChanSource(ch)
	ch <- uevent.Event{Action: "add", DevPath: "/devices/x"}
	ev, err := src.Next(context.Background())
	if err != nil || ev.DevPath != "/devices/x" {
		t.Errorf("Next() = %+v, %v, want the queued event", ev, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := src.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Next(expiring ctx) error = %v, want DeadlineExceeded", err)
	}
	close(ch)
	if _, err := src.Next(context.Background()); !errors.Is(err, uevent.ErrClosed) {
		t.Errorf("Next(closed) error = %v, want ErrClosed", err)
	}
}

// listen opens a real netlink listener; creating a NETLINK_KOBJECT_UEVENT socket needs no
// privilege, so a failure is a real error.
func listen(t *testing.T) *uevent.Listener {
	t.Helper()
	l, err := uevent.Listen(uevent.Config{BufferSize: 1 << 20})
	if err != nil {
		t.Fatalf("Listen() error: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// TestListenerKernelEvent asks the kernel for a synthetic uevent (writing "change UUID KEY=VAL"
// to a sysfs uevent file, as udevadm trigger does) and expects to receive it.
func TestListenerKernelEvent(t *testing.T) {
	const trigger = "/sys/class/mem/null/uevent"
	if os.Geteuid() != 0 {
		t.Skip("prerequisite missing: root (to write " + trigger + ")")
	}
	l := listen(t)
	id := fmt.Sprintf("7a3c0e52-0000-4000-8000-%012d", os.Getpid())
	if err := os.WriteFile(trigger, []byte("change "+id+" RAMBOOT=test"), 0); err != nil {
		t.Skipf("prerequisite missing: writable sysfs (%s): %v", trigger, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		ev, err := l.Next(ctx)
		if err != nil {
			t.Fatalf("Next() error before our synthetic event arrived: %v", err)
		}
		if ev.Env["SYNTH_UUID"] != id {
			continue // someone else's event
		}
		if ev.Action != "change" || ev.DevPath != "/devices/virtual/mem/null" || ev.Subsystem != "mem" ||
			ev.DevName != "null" || ev.Env["SYNTH_ARG_RAMBOOT"] != "test" {
			t.Errorf("Next() = %+v, want change of /devices/virtual/mem/null with SYNTH_ARG_RAMBOOT=test", ev)
		}
		return
	}
}

func TestListenerCancelAndClose(t *testing.T) {
	l := listen(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	start := time.Now()
	// Events from other activity on the machine may arrive; only the way Next ends matters.
	for {
		_, err := l.Next(ctx)
		if err == nil {
			continue
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Next(expiring ctx) error = %v, want DeadlineExceeded", err)
		}
		break
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Next(30ms ctx) returned after %v, want promptly", d)
	}

	// The listener stays usable after a cancelled Next; Close from another goroutine ends it.
	done := make(chan error, 1)
	go func() {
		for {
			_, err := l.Next(context.Background())
			if err != nil {
				done <- err
				return
			}
		}
	}()
	time.Sleep(20 * time.Millisecond)
	l.Close()
	select {
	case err := <-done:
		if !errors.Is(err, uevent.ErrClosed) {
			t.Errorf("Next() after Close error = %v, want ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Next() still blocked 2s after Close")
	}
}

// TestListenerOverflow fills a tiny receive buffer with synthetic events and checks that the
// overflow is reported as ErrOverflow and the listener keeps working (nlplug-findfs exits here).
func TestListenerOverflow(t *testing.T) {
	const trigger = "/sys/class/mem/null/uevent"
	if os.Geteuid() != 0 {
		t.Skip("prerequisite missing: root (to write " + trigger + ")")
	}
	l, err := uevent.Listen(uevent.Config{BufferSize: 1024}) // the kernel rounds up to its minimum
	if err != nil {
		t.Fatalf("Listen() error: %v", err)
	}
	defer l.Close()
	for i := 0; i < 64; i++ {
		if err := os.WriteFile(trigger, []byte("change"), 0); err != nil {
			t.Skipf("prerequisite missing: writable sysfs (%s): %v", trigger, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var overflow bool
	var after int
	for i := 0; i < 200 && after < 1; i++ {
		_, err := l.Next(ctx)
		switch {
		case errors.Is(err, uevent.ErrOverflow):
			overflow = true
			// Prove the listener still delivers after the overflow.
			os.WriteFile(trigger, []byte("change"), 0)
		case err != nil:
			t.Fatalf("Next() error = %v, want events or ErrOverflow", err)
		case overflow:
			after++
		}
	}
	if !overflow || after < 1 {
		t.Errorf("after 64 events into a tiny buffer: overflow reported = %v, events after it = %d; want true, >= 1", overflow, after)
	}
}
