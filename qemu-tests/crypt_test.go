package qemutests

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ramboot/ramboot/overlay"
	"github.com/ramboot/ramboot/qemu-tests/vm"
)

// TestEncryptedOverlay: an encrypted apkovl (openssl enc -aes-256-cbc, as `lbu commit -e` writes
// it) is opened with the password file on the medium named by apkovl_key=, without a prompt;
// leftovers next to it (a stale HOST.apkovl.tar.gz.new, which Alpine's initramfs would try as a
// cipher named "new", and an interrupted commit's .lbu-*.tmp) are named and not used.
func TestEncryptedOverlay(t *testing.T) {
	t.Parallel()
	a := artifacts(t, "x86_64")
	dir := t.TempDir()
	media := buildMedia(t, a, mediaSpec{arch: "x86_64", format: "fat"}, dir)
	write := func(o apkovl) []byte {
		p := filepath.Join(dir, "ovl.tar.gz")
		o.write(t, p)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good := baseOverlay("rbcrypt", []string{"alpine-base", "busybox-mdev-openrc"}, nil, `check from "$(cat /etc/rbtest-origin)"`+"\n")
	good["etc/rbtest-origin"] = ovlEntry{body: "encrypted\n"}
	var enc bytes.Buffer
	if err := overlay.Encrypt(&enc, write(good), "aes-256-cbc", []byte("rb-secret"), rand.Reader); err != nil {
		t.Fatal(err)
	}
	stale := baseOverlay("rbcrypt", []string{"alpine-base"}, nil, `check from stale`+"\n")
	fatWrite(t, media, "rbcrypt.apkovl.tar.gz.aes-256-cbc", enc.Bytes())
	fatWrite(t, media, "rbcrypt.pass", []byte("rb-secret\n"))
	fatWrite(t, media, "rbcrypt.apkovl.tar.gz.new", write(stale))
	fatWrite(t, media, ".lbu-commit-1.tmp", []byte("partial"))
	v, _ := startVM(t, a, bootSpec{arch: "x86_64", append: "apkovl_key=vda:rbcrypt.pass",
		disks: []vm.Disk{{ID: "media", Path: media, Kind: vm.Virtio, ReadOnly: true}}})
	r := waitChecks(t, ctxFor(t), v)
	logPhases(t, "x86_64 encrypted overlay", r.report)
	expectCheck(t, r, "from", "encrypted")
	expectCheck(t, r, "hostname", "rbcrypt")
	for _, leftover := range []string{`rbcrypt\.apkovl\.tar\.gz\.new: ignored`, `\.lbu-commit-1\.tmp: ignored`} {
		if !regexp.MustCompile(`ramboot: overlay: /media/vda/` + leftover).MatchString(v.Transcript()) {
			t.Errorf("console does not name the leftover (want %q)", leftover)
		}
	}
	if v.Seen("Password for") {
		t.Errorf("console shows a password prompt, want the key file used")
	}
	if rep := r.report; rep != nil {
		if rep.Overlay == nil || rep.Overlay.Source != "media" || rep.Overlay.KeyFile != "/media/vda/rbcrypt.pass" ||
			filepath.Base(rep.Overlay.Path) != "rbcrypt.apkovl.tar.gz.aes-256-cbc" {
			t.Errorf("boot report overlay = %+v, want the encrypted apkovl from the media opened with /media/vda/rbcrypt.pass", rep.Overlay)
		} else if log := strings.Join(rep.Overlay.Log, "\n"); !strings.Contains(log, ".lbu-commit-1.tmp: ignored") {
			t.Errorf("boot report overlay log = %q, want the ignored .lbu-commit-1.tmp", rep.Overlay.Log)
		}
	}
	if err := v.Wait(ctxFor(t)); err != nil {
		t.Errorf("guest did not power off: %v", err)
	}
}
