package lbu

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ramboot/ramboot/overlay"
)

// DefaultBackupLimit is used when BACKUP_LIMIT is not set. Alpine's default of 0 deletes every
// backup (even the one just made) on each commit; keeping a few is the safer default.
const DefaultBackupLimit = 3

// Options are shared by the lbu operations.
type Options struct {
	Root     string // the system root ("/" in the booted system)
	Config   Config
	Hostname string    // "" = kernel hostname for "/", else ROOT/etc/hostname
	Out      io.Writer // messages (nil = discard)
	Err      io.Writer // hook output (nil = discard)
	Verbose  bool
	// Password for encryption/decryption; overrides Config.Password. PasswordPrompt is asked
	// when neither is set and a password is needed.
	Password       string
	PasswordPrompt func(prompt string) ([]byte, error)
	Hooks          bool          // run ROOT/etc/lbu/{pre,post}-package.d (the CLI does for root "/")
	HookTimeout    time.Duration // 0 = 60s
	LockTimeout    time.Duration // 0 = 10s
	Rand           io.Reader     // salt source (nil = crypto/rand)
	// StepHook, when set, is called at each commit step ("built", "written", "synced",
	// "verified", "backed-up", "renamed", "cleaned", "pruned"): crash tests pause there.
	StepHook func(step string)
}

func (o *Options) out() io.Writer {
	if o.Out == nil {
		return io.Discard
	}
	return o.Out
}

func (o *Options) logf(format string, a ...any) { fmt.Fprintf(o.out(), format+"\n", a...) }

func (o *Options) step(s string) {
	if o.StepHook != nil {
		o.StepHook(s)
	}
}

func (o *Options) hostname() (string, error) {
	if o.Hostname != "" {
		return o.Hostname, nil
	}
	if o.Root != "/" {
		if b, err := os.ReadFile(filepath.Join(o.Root, "etc/hostname")); err == nil {
			if h := strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]); h != "" {
				return h, nil
			}
		}
	}
	h, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("hostname: %w", err)
	}
	if h == "" || h == "(none)" {
		// Kernel hostname never set (no hostname service): use the configured one.
		if b, err := os.ReadFile(filepath.Join(o.Root, "etc/hostname")); err == nil {
			if c := strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]); c != "" {
				return c, nil
			}
		}
		return "", errors.New("hostname is not set (kernel hostname empty and no /etc/hostname)")
	}
	return h, nil
}

func (o *Options) password(what string) ([]byte, error) {
	if o.Password != "" {
		return []byte(o.Password), nil
	}
	if o.Config.Password != "" {
		return []byte(o.Config.Password), nil
	}
	if o.PasswordPrompt != nil {
		return o.PasswordPrompt("Password for " + what + ": ")
	}
	return nil, fmt.Errorf("%s needs a password: set PASSWORD in lbu.conf, use -p, or run on a terminal", what)
}

// restoreOpts are the overlay options to open an existing (maybe encrypted) overlay.
func (o *Options) restoreOpts() overlay.RestoreOptions {
	ro := overlay.RestoreOptions{}
	if o.Password != "" || o.Config.Password != "" {
		pw := o.Password
		if pw == "" {
			pw = o.Config.Password
		}
		ro.Password = func(string) ([]byte, error) { return []byte(pw), nil }
	} else if o.PasswordPrompt != nil {
		ro.Password = o.PasswordPrompt
	}
	return ro
}

// Target is where overlays live: LBU_BACKUPDIR, or /media/MEDIA (mounted/remounted as needed).
type Target struct {
	Dir       string
	NeedMount bool
}

// ResolveTarget picks the directory from LBU_BACKUPDIR or the media argument/LBU_MEDIA, like
// lbu; paths are taken inside Root.
func (o *Options) ResolveTarget(media string) (Target, error) {
	if o.Config.BackupDir != "" {
		return Target{Dir: filepath.Join(o.Root, o.Config.BackupDir)}, nil
	}
	if media == "" {
		media = o.Config.Media
	}
	if media == "" {
		return Target{}, errors.New("no medium: set LBU_MEDIA (a name under /media, e.g. LBU_MEDIA=vda) or LBU_BACKUPDIR in /etc/lbu/lbu.conf, or give MEDIA on the command line")
	}
	media = strings.TrimPrefix(media, "/media/")
	if media == "" || strings.Contains(media, "/") || media == ".." || media == "." {
		return Target{}, fmt.Errorf("medium %q: want a name under /media", media)
	}
	return Target{Dir: filepath.Join(o.Root, "media", media), NeedMount: true}, nil
}

// Package builds the overlay archive of Root (with hooks when enabled): gzip tar, encrypted when
// cipher is not "". It returns the bytes written and the manifest of the plain archive.
func Package(ctx context.Context, o *Options, cipher string) ([]byte, Manifest, error) {
	hookTimeout := o.HookTimeout
	if hookTimeout == 0 {
		hookTimeout = 60 * time.Second
	}
	errw := o.Err
	if errw == nil {
		errw = io.Discard
	}
	if cipher != "" && !overlay.CipherSupported(cipher) {
		return nil, nil, fmt.Errorf("encryption: cipher %q is not supported (want aes-128-cbc, aes-192-cbc or aes-256-cbc)", cipher)
	}
	var pw []byte
	if cipher != "" {
		var err error
		if pw, err = o.password("the " + cipher + " overlay"); err != nil {
			return nil, nil, err
		}
	}
	if o.Hooks {
		if err := runHooks(ctx, o.Root, "pre-package.d", errw, hookTimeout); err != nil {
			return nil, nil, fmt.Errorf("pre-package hooks: %w", err)
		}
	}
	data, man, err := packageArchive(o, cipher, pw)
	if o.Hooks {
		// Like lbu, post hooks run whatever the result; their failure is reported too.
		if herr := runHooks(ctx, o.Root, "post-package.d", errw, hookTimeout); herr != nil && err == nil {
			err = fmt.Errorf("post-package hooks: %w", herr)
		}
	}
	return data, man, err
}

func packageArchive(o *Options, cipher string, pw []byte) ([]byte, Manifest, error) {
	files, err := FileList(o.Root)
	if err != nil {
		return nil, nil, err
	}
	if o.Verbose {
		for _, f := range files {
			o.logf("%s", f)
		}
	}
	gz, man, err := BuildArchive(o.Root, files)
	if err != nil {
		return nil, nil, err
	}
	if cipher == "" {
		return gz, man, nil
	}
	rnd := o.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	var b bytes.Buffer
	if err := overlay.Encrypt(&b, gz, cipher, pw, rnd); err != nil {
		return nil, nil, err
	}
	return b.Bytes(), man, nil
}

// CommitOptions are the commit flags.
type CommitOptions struct {
	Media     string // MEDIA argument ("" = LBU_MEDIA)
	DryRun    bool   // -n: change nothing at all
	DeleteOld bool   // -d: remove other overlays on the medium (after the new one is safe)
	Encrypt   bool   // -e: encrypt with DEFAULT_CIPHER when ENCRYPTION is not set
}

const tempPrefix = ".lbu-" // temporary files on the medium: never match *.apkovl*

// Commit writes ROOT's overlay to the medium atomically and durably:
//
//	lock → remount rw → build → write .lbu-*.tmp → fsync → drop cache, read back, verify →
//	copy the current overlay to its backup name (tmp + rename) → rename the new one over the
//	current → fsync dir → remove replaced/leftover overlays → prune backups → syncfs → remount ro.
//
// At every instant the medium holds a complete overlay under the final name (the old one until
// the rename, the new one after); a failure at any step leaves the previous overlay intact.
func Commit(ctx context.Context, o *Options, co CommitOptions) (err error) {
	host, err := o.hostname()
	if err != nil {
		return err
	}
	tgt, err := o.ResolveTarget(co.Media)
	if err != nil {
		return err
	}
	cipher := o.Config.Encryption
	if cipher == "" && co.Encrypt {
		cipher = o.Config.DefaultCipher
	}
	outName := host + overlay.Suffix
	if cipher != "" {
		outName += "." + cipher
		if !overlay.CipherSupported(cipher) {
			return fmt.Errorf("encryption: cipher %q is not supported (want aes-128-cbc, aes-192-cbc or aes-256-cbc)", cipher)
		}
		// Ask once: the same password encrypts and verifies.
		pw, err := o.password("the " + cipher + " overlay")
		if err != nil {
			return err
		}
		oc := *o
		oc.Password = string(pw)
		o = &oc
	}
	outPath := filepath.Join(tgt.Dir, outName)

	// Lock first: a second lbu must not see the medium made writable by the first and then
	// find it read-only again when its turn comes.
	lockTimeout := o.LockTimeout
	if lockTimeout == 0 {
		lockTimeout = 10 * time.Second
	}
	unlock, err := lockDir(tgt.Dir, lockTimeout)
	if err != nil {
		return err
	}
	defer unlock()

	ms, err := openMedia(o.Root, tgt.Dir, tgt.NeedMount, !co.DryRun, func(s string) {
		if o.Verbose {
			o.logf("%s", s)
		}
	})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := ms.close(); cerr != nil && err == nil {
			err = cerr
		}
	}()

	cands, ignored, err := overlay.Scan(tgt.Dir)
	if err != nil {
		return fmt.Errorf("medium vanished or unreadable: %w", err)
	}
	var replace, foreign []string // same host other cipher; other hosts
	var current *overlay.Candidate
	for i, c := range cands {
		switch {
		case c.Path == outPath:
			current = &cands[i]
		case c.Name == host:
			replace = append(replace, c.Path)
		default:
			foreign = append(foreign, c.Path)
		}
	}
	if len(foreign) > 0 && !co.DeleteOld {
		return fmt.Errorf("the following apkovl file(s) of other hosts were found: %s; use -d to replace them (nothing written)", strings.Join(foreign, " "))
	}
	leftovers := leftoverFiles(tgt.Dir, ignored)

	data, man, err := Package(ctx, o, cipher)
	if err != nil {
		return fmt.Errorf("problems creating archive, nothing written: %w", err)
	}
	o.step("built")
	if err := ctx.Err(); err != nil {
		return err
	}

	var backups []string // current or replaced overlays to keep as backups
	if !co.DeleteOld {
		if current != nil {
			backups = append(backups, current.Path)
		}
		backups = append(backups, replace...)
	}
	var remove []string
	remove = append(remove, replace...)
	if co.DeleteOld {
		remove = append(remove, foreign...)
	}
	remove = append(remove, leftovers...)

	if co.DryRun {
		o.logf("Would create %s (%d bytes, %d entries)", outPath, len(data), len(man))
		for _, b := range backups {
			o.logf("Would back up %s as %s", b, backupName(b, host))
		}
		for _, r := range remove {
			o.logf("Would remove %s", r)
		}
		return nil
	}

	tmp, err := writeTemp(tgt.Dir, data, o)
	if err != nil {
		return err
	}
	committed := false
	defer func() {
		if !committed {
			os.Remove(tmp)
		}
	}()
	if err := verifyFile(tmp, cipher, man, o); err != nil {
		return fmt.Errorf("verify %s after writing (previous overlay left intact): %w", tmp, err)
	}
	o.step("verified")

	for _, b := range backups {
		bn := filepath.Join(tgt.Dir, backupName(b, host))
		if err := copyDurable(b, bn, tgt.Dir); err != nil {
			return fmt.Errorf("back up %s (previous overlay left intact): %w", b, err)
		}
		if o.Verbose {
			o.logf("Backed up %s as %s", filepath.Base(b), filepath.Base(bn))
		}
	}
	o.step("backed-up")
	if err := ctx.Err(); err != nil {
		return err
	}

	if err := os.Rename(tmp, outPath); err != nil {
		return fmt.Errorf("rename %s to %s (previous overlay left intact): %w", tmp, outPath, err)
	}
	committed = true
	if err := syncDir(tgt.Dir); err != nil {
		return fmt.Errorf("commit %s: %w", outPath, err)
	}
	o.step("renamed")
	if o.Verbose {
		o.logf("Created %s", outPath)
	}

	for _, r := range remove {
		if err := os.Remove(r); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("remove replaced overlay %s: %w", r, err)
		}
		if o.Verbose {
			o.logf("Removed %s", r)
		}
	}
	o.step("cleaned")
	if err := pruneBackups(tgt.Dir, host, o); err != nil {
		return err
	}
	if err := syncDir(tgt.Dir); err != nil {
		return fmt.Errorf("commit %s: %w", outPath, err)
	}
	o.step("pruned")
	return nil
}

// leftoverFiles are the temporaries of interrupted commits: Alpine lbu's HOST.apkovl.tar.gz.new
// (which Alpine's initramfs would try to boot and choke on) and our .lbu-*.tmp. A successful
// commit removes them.
func leftoverFiles(dir string, ignored []string) []string {
	var out []string
	for _, line := range ignored {
		p, _, _ := strings.Cut(line, ": ignored: ")
		// Only lbu's own temporary name; other odd files are the user's and stay.
		if !strings.HasSuffix(p, overlay.Suffix+".new") || strings.HasPrefix(filepath.Base(p), ".") {
			continue
		}
		if info, err := os.Lstat(p); err == nil && info.Mode().IsRegular() {
			out = append(out, p)
		}
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tempPrefix) && strings.HasSuffix(e.Name(), ".tmp") && e.Type().IsRegular() {
			p := filepath.Join(dir, e.Name())
			if indexOf(out, p) < 0 {
				out = append(out, p)
			}
		}
	}
	return out
}

// backupName is lbu's HOST.<UTC mtime YYYYmmddHHMMSS>.tar.gz[.CIPHER] for an overlay file.
func backupName(path, host string) string {
	stamp := "00000000000000"
	if info, err := os.Stat(path); err == nil {
		stamp = info.ModTime().UTC().Format("20060102150405")
	}
	suffix := strings.TrimPrefix(filepath.Base(path), host+overlay.Suffix)
	return host + "." + stamp + ".tar.gz" + suffix
}

// writeTemp writes data to a new temporary file in dir and fsyncs it. ENOSPC and EIO are
// reported as a full or failing medium.
func writeTemp(dir string, data []byte, o *Options) (string, error) {
	f, err := os.CreateTemp(dir, tempPrefix+"commit-*.tmp")
	if err != nil {
		return "", mediumError("create temporary file", dir, err)
	}
	name := f.Name()
	fail := func(what string, err error) (string, error) {
		f.Close()
		os.Remove(name)
		return "", mediumError(what, name, err)
	}
	if _, err := f.Write(data); err != nil {
		return fail("write", err)
	}
	o.step("written")
	// Best effort: vfat may refuse mode changes, and the mode of the overlay file is irrelevant.
	_ = f.Chmod(0644)
	if err := f.Sync(); err != nil {
		return fail("fsync", err)
	}
	// Drop the clean pages so the verification reads what the medium holds.
	_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
	if err := f.Close(); err != nil {
		return fail("close", err)
	}
	o.step("synced")
	return name, nil
}

func mediumError(what, path string, err error) error {
	switch {
	case errors.Is(err, syscall.ENOSPC):
		return fmt.Errorf("medium full: %s %s: %w (previous overlay left intact)", what, path, err)
	case errors.Is(err, syscall.EIO), errors.Is(err, syscall.ENODEV), errors.Is(err, syscall.ENXIO), errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("medium failing or vanished: %s %s: %w (previous overlay left intact)", what, path, err)
	case errors.Is(err, syscall.EROFS):
		return fmt.Errorf("medium read-only: %s %s: %w", what, path, err)
	}
	return fmt.Errorf("%s %s: %w", what, path, err)
}

// verifyFile reopens what was written, decrypts/decompresses it fully and compares it entry
// by entry with the manifest of what was packed.
func verifyFile(path, cipher string, want Manifest, o *Options) error {
	ro := o.restoreOpts()
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	gz := data
	if cipher != "" {
		pw, err := o.password("verification")
		if err != nil {
			return err
		}
		if gz, _, err = overlay.Decrypt(data, cipher, pw); err != nil {
			return err
		}
	}
	got, err := ReadManifest(gz, maxBytes(ro), false)
	if err != nil {
		return err
	}
	return sameManifest(want, got)
}

func maxBytes(ro overlay.RestoreOptions) int64 {
	if ro.MaxBytes > 0 {
		return ro.MaxBytes
	}
	return overlay.DefaultMaxBytes
}

// copyDurable copies src to dst through a temporary file in dir (fsync, rename, dir fsync),
// keeping src's mtime, so dst is either absent/old or complete.
func copyDurable(src, dst, dir string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	info, err := os.Stat(src)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, tempPrefix+"backup-*.tmp")
	if err != nil {
		return mediumError("create", dir, err)
	}
	name := f.Name()
	ok := false
	defer func() {
		if !ok {
			os.Remove(name)
		}
	}()
	if _, err := f.Write(data); err != nil {
		f.Close()
		return mediumError("write", name, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return mediumError("fsync", name, err)
	}
	if err := f.Close(); err != nil {
		return mediumError("close", name, err)
	}
	if err := os.Chtimes(name, info.ModTime(), info.ModTime()); err != nil {
		return err
	}
	if err := os.Rename(name, dst); err != nil {
		return err
	}
	ok = true
	return syncDir(dir)
}

// pruneBackups deletes the oldest backups of host beyond the limit.
func pruneBackups(dir, host string, o *Options) error {
	limit := o.Config.BackupLimit
	if !o.Config.BackupLimitSet {
		limit = DefaultBackupLimit
	}
	bs, err := overlay.Backups(dir, host)
	if err != nil {
		return err
	}
	for i := limit; i < len(bs); i++ {
		if err := os.Remove(bs[i]); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("prune backup %s: %w", bs[i], err)
		}
		if o.Verbose {
			o.logf("Removed old backup %s", filepath.Base(bs[i]))
		}
	}
	return nil
}

// ListBackups returns the basenames of all backups in the target (every host's, like lbu).
func ListBackups(o *Options, media string) ([]string, error) {
	tgt, err := o.ResolveTarget(media)
	if err != nil {
		return nil, err
	}
	ms, err := openMedia(o.Root, tgt.Dir, tgt.NeedMount, false, nil)
	if err != nil {
		return nil, err
	}
	defer ms.close()
	ents, err := os.ReadDir(tgt.Dir)
	if err != nil {
		return nil, fmt.Errorf("list backups: %w", err)
	}
	var out []string
	for _, e := range ents {
		if _, _, ok := overlay.ParseBackupName(e.Name()); ok && e.Type().IsRegular() {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

// Revert makes backup rev (a basename in the target) the current overlay for the next boot.
// The current overlay is backed up first; the revision is copied (not moved) and verified; the
// current name takes the revision's cipher suffix so the initramfs decrypts it correctly.
func Revert(ctx context.Context, o *Options, rev, media string) (err error) {
	host, err := o.hostname()
	if err != nil {
		return err
	}
	tgt, err := o.ResolveTarget(media)
	if err != nil {
		return err
	}
	if strings.Contains(rev, "/") {
		return fmt.Errorf("revert: %q: want a file name as listed by lbu list-backup", rev)
	}
	unlock, err := lockDir(tgt.Dir, 10*time.Second)
	if err != nil {
		return err
	}
	defer unlock()
	ms, err := openMedia(o.Root, tgt.Dir, tgt.NeedMount, true, nil)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := ms.close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	revPath := filepath.Join(tgt.Dir, rev)
	info, err := os.Lstat(revPath)
	if err != nil || !info.Mode().IsRegular() {
		return fmt.Errorf("revert: %s: file not found", revPath)
	}
	bhost, _, ok := overlay.ParseBackupName(rev)
	if !ok {
		return fmt.Errorf("revert: %s is not a backup name (HOST.YYYYMMDDhhmmss.tar.gz[.CIPHER])", rev)
	}
	if bhost != host {
		o.logf("note: %s is a backup of host %s, restoring it as %s", rev, bhost, host)
	}
	_, afterStamp, _ := strings.Cut(strings.TrimPrefix(rev, bhost+"."), ".tar.gz")
	curPath := filepath.Join(tgt.Dir, host+overlay.Suffix+afterStamp)
	cipher := strings.TrimPrefix(afterStamp, ".")
	// Verify the revision fully before touching anything (needs the password if encrypted).
	ro := o.restoreOpts()
	gz := []byte(nil)
	data, err := os.ReadFile(revPath)
	if err != nil {
		return fmt.Errorf("revert: %w", err)
	}
	gz = data
	if cipher != "" {
		pw, err := o.password(rev)
		if err != nil {
			return err
		}
		if gz, _, err = overlay.Decrypt(data, cipher, pw); err != nil {
			return fmt.Errorf("revert: %s: %w", rev, err)
		}
	}
	if _, err := ReadManifest(gz, maxBytes(ro), false); err != nil {
		return fmt.Errorf("revert: %s is damaged: %w", rev, err)
	}
	cands, _, err := overlay.Scan(tgt.Dir)
	if err != nil {
		return err
	}
	var others []string
	for _, c := range cands {
		if c.Name == host {
			if err := copyDurable(c.Path, filepath.Join(tgt.Dir, backupName(c.Path, host)), tgt.Dir); err != nil {
				return fmt.Errorf("revert: back up %s: %w", c.Path, err)
			}
			if c.Path != curPath {
				others = append(others, c.Path)
			}
		}
	}
	if err := copyDurable(revPath, curPath, tgt.Dir); err != nil {
		return fmt.Errorf("revert: %w", err)
	}
	for _, p := range others {
		os.Remove(p)
	}
	o.logf("Reverted %s to %s (effective at next boot)", filepath.Base(curPath), rev)
	return syncDir(tgt.Dir)
}
