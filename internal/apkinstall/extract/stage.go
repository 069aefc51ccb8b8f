package extract

import (
	"archive/tar"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/ramboot/ramboot/internal/apkinstall/pkgstream"
)

// Staging: a regular file's content is written ahead of its turn, by a decoder, into an
// unnamed file of the root's file system (O_TMPFILE); the single writer later gives it its
// metadata and links it into place, in install order.
//
// Why: the writer is the installer's critical path once the decoders are ahead, and copying
// contents into the file system was most of its work. Staged, that copy runs on the decoders'
// CPUs, and the decoded data segment can be recycled as soon as the package is decoded instead
// of when the writer reaches it. Nothing is visible in the tree before the writer links it,
// so scripts and conflicts see exactly what they saw without staging.

// CanStage reports whether the root's file system takes unnamed files (O_TMPFILE) and the
// process may link them in (linkat with AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH on kernels
// before 6.10; without it every staged file would be copied once more, so only root stages).
func (x *Extractor) CanStage() bool {
	if x.euid != 0 {
		return false
	}
	fd, err := unix.Openat(x.rootFD, ".", unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}

// Stageable reports whether a decoder may stage f: a regular file with a recorded checksum
// (the writer's checks use it, not the content), outside protected paths (whose replacement
// compares contents) and not one an overlay placed.
func (x *Extractor) Stageable(f *pkgstream.File) bool {
	return f.Type == tar.TypeReg && f.Checksum != nil && len(f.Data) > 0 &&
		!x.overlay[f.Name] && !x.protected(f.Name, false)
}

// Stage writes f's content to a new unnamed file and returns its descriptor, which
// InstallStaged consumes. Safe for concurrent use (it only reads the Extractor's fixed state).
// yield, if not nil, is called between the writes of a large file's chunks (stageChunk):
// writing megabytes takes milliseconds.
func (x *Extractor) Stage(f *pkgstream.File, yield func()) (int, error) {
	// Read-write: where it cannot be linked in, it is copied from.
	fd, err := unix.Openat(x.rootFD, ".", unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, f.Mode&0o777)
	if err != nil {
		return -1, fmt.Errorf("%s: stage: %w", f.Name, err)
	}
	if err := writeAll(fd, f.Data, yield); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("%s: stage: %w", f.Name, err)
	}
	return fd, nil
}

// stageChunk is how much Stage writes at once when it has a yield to call in between.
const stageChunk = 256 << 10

func writeAll(fd int, data []byte, yield func()) error {
	for len(data) > 0 {
		chunk := data
		if yield != nil && len(chunk) > stageChunk {
			chunk = chunk[:stageChunk]
		}
		n, err := unix.Write(fd, chunk)
		if err != nil {
			return fmt.Errorf("write: %w", err)
		}
		data = data[n:]
		if yield != nil && len(data) > 0 {
			yield()
		}
	}
	return nil
}

// linkStaged gives the staged file sfd the name pfd/name and returns the descriptor to set
// its metadata through: sfd itself, or where it cannot be linked there (the name is on another
// file system inside the root, or linking is not permitted) a new file the content was copied
// into, which the caller closes (closeFD). An existing name is EEXIST, as for a new file.
func linkStaged(sfd, pfd int, name string) (fd int, closeFD bool, err error) {
	switch err = unix.Linkat(sfd, "", pfd, name, unix.AT_EMPTY_PATH); err {
	case unix.EXDEV, unix.EPERM, unix.ENOENT: // copied below
	default:
		return sfd, false, err // linked, or EEXIST and other errors as for a new file
	}
	fd, err = unix.Openat(pfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return -1, false, err
	}
	buf := make([]byte, 64<<10)
	for off := int64(0); ; {
		n, err := unix.Pread(sfd, buf, off)
		if err == nil && n > 0 {
			err = writeAll(fd, buf[:n], nil)
		}
		if err != nil {
			unix.Close(fd)
			unix.Unlinkat(pfd, name, 0)
			return -1, false, fmt.Errorf("copy staged content: %w", err)
		}
		if n == 0 {
			return fd, true, nil
		}
		off += int64(n)
	}
}
