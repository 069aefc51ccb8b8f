package overlay

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DefaultMaxBytes bounds the uncompressed size of an overlay when RestoreOptions.MaxBytes is 0.
const DefaultMaxBytes = 256 << 20

// RestoreOptions controls how an overlay is opened and restored.
type RestoreOptions struct {
	// Password asks for the password of an encrypted overlay (nil = no interactive prompt).
	// It is called at most three times, as Alpine's initramfs does. See ConsolePrompt.
	Password func(prompt string) ([]byte, error)
	// KeyFile holds the password (first line, like `openssl -pass file:`); tried before Password.
	KeyFile string
	// MaxBytes bounds the uncompressed tar stream (0 = DefaultMaxBytes).
	MaxBytes int64
	// Arch replaces the content of an overlay-provided etc/apk/arch, as Alpine's initramfs
	// does with `apk --print-arch` ("" = the arch this binary runs on).
	Arch string
}

// RestoreResult says what Restore did.
type RestoreResult struct {
	Placed  []string // root-relative paths created from the overlay (files, links, dirs), in archive order
	Refused []string // "path: reason" for each entry safety refused
	Digest  Digest   // for encrypted overlays: the key derivation digest that worked
}

func (o RestoreOptions) maxBytes() int64 {
	if o.MaxBytes > 0 {
		return o.MaxBytes
	}
	return DefaultMaxBytes
}

// CipherOf returns the cipher an overlay file name implies: "" for *.gz (plain), else the
// last suffix (Alpine's initramfs rule `${ovl##*.}`).
func CipherOf(path string) string {
	base := filepath.Base(path)
	if strings.HasSuffix(base, ".gz") {
		return ""
	}
	if i := strings.LastIndex(base, "."); i >= 0 {
		return base[i+1:]
	}
	return ""
}

// Load reads an overlay file and returns its gzip stream, decrypting it when its name carries
// a cipher suffix (password from KeyFile, then up to three Password prompts).
func Load(ovlPath string, opts RestoreOptions) (gz []byte, digest Digest, err error) {
	info, err := os.Stat(ovlPath)
	if err != nil {
		return nil, "", fmt.Errorf("apkovl %s: %w", ovlPath, err)
	}
	if !info.Mode().IsRegular() {
		return nil, "", fmt.Errorf("apkovl %s: not a regular file", ovlPath)
	}
	// Compressed data is never larger than the uncompressed bound plus gzip/cipher overhead
	// worth mentioning; this keeps a bogus huge file from being read into memory.
	if info.Size() > opts.maxBytes()+1<<20 {
		return nil, "", fmt.Errorf("apkovl %s: file size %d exceeds the limit of %d bytes", ovlPath, info.Size(), opts.maxBytes())
	}
	data, err := os.ReadFile(ovlPath)
	if err != nil {
		return nil, "", fmt.Errorf("apkovl %s: %w", ovlPath, err)
	}
	c := CipherOf(ovlPath)
	if c == "" {
		if len(data) >= 8 && string(data[:8]) == saltMagic {
			return nil, "", fmt.Errorf("apkovl %s: file is openssl-encrypted but its name has no cipher suffix", ovlPath)
		}
		return data, "", nil
	}
	if !CipherSupported(c) {
		return nil, "", fmt.Errorf("apkovl %s: cipher %q is not supported", ovlPath, c)
	}
	var tried []string
	if opts.KeyFile != "" {
		pw, err := ReadKeyFile(opts.KeyFile)
		if err != nil {
			return nil, "", fmt.Errorf("apkovl %s: %w", ovlPath, err)
		}
		pt, d, err := Decrypt(data, c, pw)
		if err == nil {
			return pt, d, nil
		}
		if !errors.Is(err, ErrBadPassword) {
			return nil, "", fmt.Errorf("apkovl %s: %w", ovlPath, err)
		}
		tried = append(tried, "key file "+opts.KeyFile)
	}
	if opts.Password != nil {
		for i := 0; i < 3; i++ {
			pw, err := opts.Password(fmt.Sprintf("Password for %s (%s): ", filepath.Base(ovlPath), c))
			if err != nil {
				return nil, "", fmt.Errorf("apkovl %s: password: %w", ovlPath, err)
			}
			pt, d, err := Decrypt(data, c, pw)
			if err == nil {
				return pt, d, nil
			}
			if !errors.Is(err, ErrBadPassword) {
				return nil, "", fmt.Errorf("apkovl %s: %w", ovlPath, err)
			}
			tried = append(tried, fmt.Sprintf("prompt %d", i+1))
		}
	}
	if len(tried) == 0 {
		return nil, "", fmt.Errorf("apkovl %s is encrypted (%s) but no key file and no console prompt are available", ovlPath, c)
	}
	return nil, "", fmt.Errorf("apkovl %s: %w (tried %s)", ovlPath, ErrBadPassword, strings.Join(tried, ", "))
}

// ReadKeyFile returns the first line of a key file, the way `openssl enc -pass file:` does.
func ReadKeyFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		data = data[:i]
	}
	data = bytes.TrimSuffix(data, []byte("\r"))
	if len(data) == 0 {
		return nil, fmt.Errorf("key file %s: empty password", path)
	}
	return data, nil
}

// WalkTar reads a gzip-compressed tar stream entry by entry, bounding the uncompressed size by
// maxBytes, and calls fn (if not nil) for each entry. It verifies the whole stream, including
// the gzip CRC at the end, so a nil error means the archive is complete and intact.
func WalkTar(gz []byte, maxBytes int64, fn func(hdr *tar.Header, r io.Reader) error) error {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return fmt.Errorf("gzip: %w", err)
	}
	lr := &limitReader{r: zr, n: maxBytes}
	tr := tar.NewReader(bufio.NewReader(lr))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if lr.over {
				return fmt.Errorf("uncompressed size exceeds the limit of %d bytes", maxBytes)
			}
			return fmt.Errorf("tar: %w", err)
		}
		if fn != nil {
			if err := fn(hdr, tr); err != nil {
				return err
			}
		}
		// Drain what fn did not read so that size limits and CRCs cover everything.
		if _, err := io.Copy(io.Discard, tr); err != nil {
			if lr.over {
				return fmt.Errorf("uncompressed size exceeds the limit of %d bytes", maxBytes)
			}
			return fmt.Errorf("tar %s: %w", hdr.Name, err)
		}
	}
	// Read to the real end so gzip checks its CRC and length trailer.
	if _, err := io.Copy(io.Discard, lr); err != nil {
		if lr.over {
			return fmt.Errorf("uncompressed size exceeds the limit of %d bytes", maxBytes)
		}
		return fmt.Errorf("gzip: %w", err)
	}
	return nil
}

type limitReader struct {
	r    io.Reader
	n    int64
	over bool
}

var errTooBig = errors.New("size limit exceeded")

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		// Probe one byte: being exactly at the limit is fine if the stream ends here.
		var one [1]byte
		k, err := l.r.Read(one[:])
		if k > 0 {
			l.over = true
			return 0, errTooBig
		}
		return 0, err
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	k, err := l.r.Read(p)
	l.n -= int64(k)
	return k, err
}

// Walk opens an overlay (decrypting it if needed) and walks its entries; see WalkTar.
func Walk(ovlPath string, opts RestoreOptions, fn func(hdr *tar.Header, r io.Reader) error) error {
	gz, _, err := Load(ovlPath, opts)
	if err != nil {
		return err
	}
	if err := WalkTar(gz, opts.maxBytes(), fn); err != nil {
		return fmt.Errorf("apkovl %s: %w", ovlPath, err)
	}
	return nil
}

// ConsolePrompt returns a Password function that writes the prompt to out and reads one line
// from in, giving up after timeout so that a headless machine never hangs waiting for a
// password nobody will type. Echo is turned off when in is a terminal.
func ConsolePrompt(in *os.File, out io.Writer, timeout time.Duration) func(string) ([]byte, error) {
	return func(prompt string) ([]byte, error) {
		fmt.Fprint(out, prompt)
		restore := noEcho(in)
		defer restore()
		type res struct {
			line []byte
			err  error
		}
		ch := make(chan res, 1)
		go func() {
			// Read byte by byte so nothing beyond the line is consumed from the console.
			var line []byte
			var b [1]byte
			for {
				n, err := in.Read(b[:])
				if n == 1 {
					if b[0] == '\n' {
						break
					}
					line = append(line, b[0])
					continue
				}
				if err != nil {
					if err == io.EOF && len(line) > 0 {
						break
					}
					ch <- res{nil, err}
					return
				}
			}
			ch <- res{bytes.TrimSuffix(line, []byte("\r")), nil}
		}()
		select {
		case r := <-ch:
			fmt.Fprintln(out)
			if r.err != nil {
				return nil, fmt.Errorf("read password: %w", r.err)
			}
			return r.line, nil
		case <-time.After(timeout):
			fmt.Fprintln(out)
			// Unblock the reader goroutine where the file supports deadlines (ttys, pipes).
			_ = in.SetReadDeadline(time.Now())
			return nil, fmt.Errorf("no password typed within %s", timeout)
		}
	}
}
