package apkinstall

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"

	"golang.org/x/sys/unix"
)

// maxPackageFile bounds what is mapped or read: far above any real package, and it keeps
// int conversions safe on 32-bit targets.
const maxPackageFile = 1 << 30

// packageFile is a package file's content, mapped read-only where possible.
//
// Why map: the decoder reads every compressed byte once (SHA-256, then inflate). Reading the
// file would copy it out of the page cache into fresh anonymous pages, each faulted in and
// zeroed first; a read-only mapping hands the decoder the page-cache pages themselves. That
// was about 5% of an install's CPU.
type packageFile struct {
	data   []byte
	mapped bool
}

// openPackageFile maps file, or reads it into buf (grown as needed) where it cannot be mapped.
func openPackageFile(file string, buf []byte) (packageFile, []byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return packageFile{}, buf, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return packageFile{}, buf, err
	}
	if !st.Mode().IsRegular() {
		return packageFile{}, buf, fmt.Errorf("%s: not a regular file", file)
	}
	size := st.Size()
	if size > maxPackageFile {
		return packageFile{}, buf, fmt.Errorf("%s: %d bytes is not a package", file, size)
	}
	if size > 0 {
		if b, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED); err == nil {
			return packageFile{data: b, mapped: true}, buf, nil
		}
	}
	// Empty, or a file system without mmap: read it (one byte more than announced, to notice
	// a file that grows while read).
	if need := int(size) + 1; cap(buf) < need {
		buf = make([]byte, need)
	}
	n, err := io.ReadFull(f, buf[:size+1])
	if err == io.EOF {
		return packageFile{data: buf[:0]}, buf, nil // empty: the decoder names it truncated
	}
	if err != io.ErrUnexpectedEOF {
		if err == nil {
			err = fmt.Errorf("%s: file grew while reading", file)
		}
		return packageFile{}, buf, err
	}
	return packageFile{data: buf[:n]}, buf, nil
}

// close unmaps a mapped file; the data must no longer be used.
func (p packageFile) close() {
	if p.mapped {
		unix.Munmap(p.data)
	}
}

// errFileChanged is returned when a mapped package file shrank while it was decoded (the
// access past its new end faults).
var errFileChanged = errors.New("package file changed while being read")

// catchFault runs f with faults on unexpected addresses turned into an error instead of a
// crash: a mapped file truncated under the decoder raises SIGBUS, which must not take down
// the installer (or PID 1).
func catchFault(f func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	defer func() {
		if r := recover(); r != nil {
			if re, ok := r.(runtime.Error); ok {
				if _, ok := re.(interface{ Addr() uintptr }); ok {
					err = fmt.Errorf("%w: %v", errFileChanged, re)
					return
				}
			}
			panic(r)
		}
	}()
	return f()
}
