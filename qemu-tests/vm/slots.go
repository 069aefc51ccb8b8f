package vm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// AcquireSlot waits for one of n machine-wide VM slots and returns the function that frees it.
// The slots are flock(2)ed files, so the bound holds across processes: `go test ./...` runs
// several test binaries at once, and two cores fit at most two TCG guests (notes §3). A slot
// held by a process that dies is released by the kernel.
func AcquireSlot(ctx context.Context, n int) (release func(), err error) {
	dir := filepath.Join(os.TempDir(), "ramboot-vm-slots")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil, fmt.Errorf("vm slots: %w", err)
	}
	for {
		for i := 0; i < n; i++ {
			f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("slot-%d", i)), os.O_CREATE|os.O_RDWR, 0o666)
			if err != nil {
				return nil, fmt.Errorf("vm slots: %w", err)
			}
			if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err == nil {
				return func() { f.Close() }, nil // closing the descriptor drops the lock
			}
			f.Close()
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for a VM slot (%d in use): %w", n, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}
