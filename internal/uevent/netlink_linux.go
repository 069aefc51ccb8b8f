package uevent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultBufferSize is the socket receive buffer, nlplug-findfs's default: big enough for the
// burst of events a machine with many PCI devices emits during coldplug.
const DefaultBufferSize = 4 << 20

// kernelGroup is the multicast group the kernel sends uevents to (udevd re-broadcasts to 2).
const kernelGroup = 1

// Config tunes the listener.
type Config struct {
	// BufferSize is the receive buffer in bytes (cmdline uevent_buf_size=); 0 = DefaultBufferSize.
	// SO_RCVBUFFORCE (root) is tried first so the size is not capped by rmem_max.
	BufferSize int
}

// Listener is a NETLINK_KOBJECT_UEVENT socket. Next may be called from one goroutine while Close
// is called from another.
type Listener struct {
	f  *os.File
	rc interface {
		Read(func(fd uintptr) bool) error
	}
	buf  []byte
	once sync.Once
	// closed distinguishes our own Close from a socket failure: the raw-conn read reports a
	// closed fd as an internal poll error that does not match os.ErrClosed.
	closed atomic.Bool
}

// Listen opens the kernel uevent socket.
func Listen(cfg Config) (*Listener, error) {
	size := cfg.BufferSize
	if size <= 0 {
		size = DefaultBufferSize
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_KOBJECT_UEVENT)
	if err != nil {
		return nil, fmt.Errorf("uevent: netlink socket: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, size); err != nil {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, size); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("uevent: receive buffer %d bytes: %w", size, err)
		}
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: kernelGroup}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("uevent: bind netlink group %d: %w", kernelGroup, err)
	}
	// os.NewFile registers the non-blocking fd with the runtime poller, which gives us
	// cancellation (deadlines, Close) without a helper thread or a self-pipe.
	f := os.NewFile(uintptr(fd), "uevent-netlink")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("uevent: %w", err)
	}
	return &Listener{f: f, rc: rc, buf: make([]byte, 64<<10)}, nil
}

// Close closes the socket; a concurrent Next returns ErrClosed.
func (l *Listener) Close() error {
	var err error
	l.once.Do(func() {
		l.closed.Store(true)
		err = l.f.Close()
	})
	return err
}

// Next returns the next kernel uevent. Messages from user space (non-zero sender port) and
// malformed messages are skipped.
func (l *Listener) Next(ctx context.Context) (Event, error) {
	stop := context.AfterFunc(ctx, func() {
		// Wake the blocked read; Next restores the deadline on its next call.
		l.f.SetReadDeadline(time.Unix(1, 0))
	})
	defer stop()
	if err := l.f.SetReadDeadline(time.Time{}); err != nil || l.closed.Load() {
		return Event{}, fmt.Errorf("uevent: %w", ErrClosed)
	}
	for {
		if err := ctx.Err(); err != nil {
			return Event{}, err
		}
		var (
			n    int
			from unix.Sockaddr
			rerr error
		)
		err := l.rc.Read(func(fd uintptr) bool {
			n, from, rerr = unix.Recvfrom(int(fd), l.buf, 0)
			return !errors.Is(rerr, unix.EAGAIN)
		})
		switch {
		case err != nil:
			if cerr := ctx.Err(); cerr != nil {
				return Event{}, cerr
			}
			if l.closed.Load() || errors.Is(err, os.ErrClosed) {
				return Event{}, ErrClosed
			}
			return Event{}, fmt.Errorf("uevent: receive: %w", err)
		case errors.Is(rerr, unix.ENOBUFS):
			return Event{}, ErrOverflow
		case errors.Is(rerr, unix.EINTR):
			continue
		case rerr != nil:
			return Event{}, fmt.Errorf("uevent: receive: %w", rerr)
		}
		if sa, ok := from.(*unix.SockaddrNetlink); ok && sa.Pid != 0 {
			continue // sent by a user-space process, not the kernel
		}
		ev, err := Parse(l.buf[:n])
		if err != nil {
			continue // libudev or malformed: not a kernel event we can use
		}
		return ev, nil
	}
}
