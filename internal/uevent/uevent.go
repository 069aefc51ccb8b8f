// Package uevent receives and parses kernel uevents (NETLINK_KOBJECT_UEVENT), the signal PID 1
// waits on for hot-plugged devices and late-appearing disks.
//
// API:
//
//	l, err := uevent.Listen(uevent.Config{})   // kernel multicast group, 4 MiB receive buffer
//	defer l.Close()
//	ev, err := l.Next(ctx)                     // blocks until an event, ctx done, or Close
//	if errors.Is(err, uevent.ErrOverflow) { ... events were lost: rescan sysfs, keep going ... }
//
//	ev, err := uevent.Parse(msg)               // "ACTION@DEVPATH\0KEY=VAL\0..."
//
// Anything that consumes events takes a Source, so tests feed canned events through a
// ChanSource instead of a socket. Listen before walking sysfs: a device that appears between
// the walk and the first receive is then still seen as an event.
//
// Unlike nlplug-findfs, a receive-buffer overflow (ENOBUFS) is not fatal: Next reports
// ErrOverflow and the caller rescans sysfs, which is the source of truth.
package uevent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Event is one kernel uevent.
type Event struct {
	Action    string            // add, remove, change, move, online, offline, bind, unbind
	DevPath   string            // /devices/... (relative to /sys)
	Subsystem string            // SUBSYSTEM=
	DevName   string            // DEVNAME= (relative to /dev), "" if none
	DevType   string            // DEVTYPE= (e.g. disk, partition)
	Modalias  string            // MODALIAS=
	Seqnum    uint64            // SEQNUM=
	Env       map[string]string // every KEY=VALUE pair, including the ones above
}

// String renders the event compactly for logs.
func (e Event) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", e.Action, e.DevPath)
	if e.Subsystem != "" {
		fmt.Fprintf(&b, " subsystem=%s", e.Subsystem)
	}
	if e.DevName != "" {
		fmt.Fprintf(&b, " devname=%s", e.DevName)
	}
	if e.Modalias != "" {
		fmt.Fprintf(&b, " modalias=%s", e.Modalias)
	}
	return b.String()
}

// Source delivers events. Next blocks until an event arrives, ctx is done (ctx.Err()), or the
// source is exhausted/closed (io.EOF-like errors are implementation specific: ErrClosed here).
type Source interface {
	Next(ctx context.Context) (Event, error)
}

// ErrClosed is returned by Next once the source is closed or (ChanSource) its channel is closed.
var ErrClosed = errors.New("uevent source closed")

// ErrOverflow is returned by Next when the kernel dropped events because the receive buffer was
// full; the listener stays usable.
var ErrOverflow = errors.New("uevent receive buffer overflow: events lost, rescan sysfs (raise uevent_buf_size)")

// ErrLibudev marks a message in udev's "libudev" binary format, which Parse does not decode:
// PID 1 listens to the kernel group only, so such messages are foreign.
var ErrLibudev = errors.New("libudev-format message")

// Parse decodes one kernel uevent message: a header "ACTION@DEVPATH" then NUL-separated
// KEY=VALUE pairs. ACTION and DEVPATH from the environment win over the header when present.
func Parse(msg []byte) (Event, error) {
	if bytes.HasPrefix(msg, []byte("libudev\x00")) {
		return Event{}, ErrLibudev
	}
	fields := bytes.Split(msg, []byte{0})
	header := string(fields[0])
	at := strings.IndexByte(header, '@')
	if at <= 0 || at == len(header)-1 {
		return Event{}, fmt.Errorf("uevent: malformed header %q", truncate(header))
	}
	ev := Event{Action: header[:at], DevPath: header[at+1:], Env: map[string]string{}}
	for _, f := range fields[1:] {
		if len(f) == 0 {
			continue
		}
		kv := string(f)
		eq := strings.IndexByte(kv, '=')
		if eq <= 0 {
			return Event{}, fmt.Errorf("uevent %s: malformed field %q", ev.DevPath, truncate(kv))
		}
		ev.Env[kv[:eq]] = kv[eq+1:]
	}
	if a := ev.Env["ACTION"]; a != "" {
		ev.Action = a
	}
	if p := ev.Env["DEVPATH"]; p != "" {
		ev.DevPath = p
	}
	ev.Subsystem = ev.Env["SUBSYSTEM"]
	ev.DevName = ev.Env["DEVNAME"]
	ev.DevType = ev.Env["DEVTYPE"]
	ev.Modalias = ev.Env["MODALIAS"]
	if s := ev.Env["SEQNUM"]; s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return Event{}, fmt.Errorf("uevent %s: SEQNUM %q: %w", ev.DevPath, s, err)
		}
		ev.Seqnum = n
	}
	return ev, nil
}

// Format renders an event in the kernel wire format (header, then the Env pairs sorted by key);
// used to build canned messages and by tests as the inverse of Parse.
func Format(ev Event) []byte {
	var b bytes.Buffer
	b.WriteString(ev.Action + "@" + ev.DevPath)
	b.WriteByte(0)
	keys := make([]string, 0, len(ev.Env))
	for k := range ev.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b.WriteString(k + "=" + ev.Env[k])
		b.WriteByte(0)
	}
	return b.Bytes()
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// ChanSource adapts a channel to a Source: tests and in-process fan-out feed events through it.
// Closing the channel makes Next return ErrClosed.
type ChanSource <-chan Event

// Next implements Source.
func (c ChanSource) Next(ctx context.Context) (Event, error) {
	select {
	case ev, ok := <-c:
		if !ok {
			return Event{}, ErrClosed
		}
		return ev, nil
	case <-ctx.Done():
		return Event{}, ctx.Err()
	}
}
