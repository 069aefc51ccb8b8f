package qemutests

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ramboot/ramboot/qemu-tests/vm"
)

var backupRE = regexp.MustCompile(`^rbtest\.[0-9]{14}\.tar\.gz$`)

// persistChecks is one script for both boots: the first boot (no /root/persist.txt yet) includes
// a file with lbu, writes it, changes /etc/motd and commits; the second boot (the overlay written
// by that commit restored it) reports what came back.
func persistChecks(token, lbu string) string {
	return fmt.Sprintf(`
if [ -f /root/persist.txt ]; then
	check boot 2
	check persist "$(cat /root/persist.txt)"
	check motd "$(cat /etc/motd)"
	check media-files "$(ls /media/vda | tr '\n' ' ')"
	out backups %[2]s list-backup
else
	check boot 1
	check lbu-path "$(command -v %[2]s)"
	%[2]s include /root/persist.txt
	check lbu-include-rc $?
	echo %[1]s > /root/persist.txt
	echo motd-%[1]s > /etc/motd
	%[2]s commit >/tmp/lbu.out 2>&1
	check lbu-commit-rc $?
	out lbu-commit cat /tmp/lbu.out
	check media-files "$(ls /media/vda | tr '\n' ' ')"
fi
`, token, lbu)
}

// TestPersistence is scenario 3: in the guest, lbu include + a changed file + lbu commit; the next
// boot from the same media has the change, and the previous overlay is kept as a backup
// (BACKUP_LIMIT=3 in the overlay's lbu.conf). It runs with the lbu a user's shell finds (ramboot's,
// installed as /usr/local/sbin/lbu) and with Alpine's own /sbin/lbu: overlays written by either
// must boot.
func TestPersistence(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, lbu string }{{"path-lbu", "lbu"}, {"alpine-lbu", "/sbin/lbu"}} {
		t.Run(tc.name, func(t *testing.T) { testPersistence(t, tc.lbu) })
	}
}

func testPersistence(t *testing.T, lbu string) {
	t.Parallel()
	a := artifacts(t, "x86_64")
	dir := t.TempDir()
	token := fmt.Sprintf("persist-%d", time.Now().UnixNano())
	ovl := baseOverlay("rbtest", []string{"alpine-base", "busybox-mdev-openrc"}, nil, persistChecks(token, lbu))
	ovl["etc/lbu/lbu.conf"] = ovlEntry{body: "# ramboot persistence test\nLBU_MEDIA=vda\nBACKUP_LIMIT=3\n"}
	ovlPath := filepath.Join(dir, "rbtest.apkovl.tar.gz")
	ovl.write(t, ovlPath)
	media := buildMedia(t, a, mediaSpec{arch: "x86_64", format: "fat", apkovl: ovlPath}, dir)
	disks := []vm.Disk{{ID: "media", Path: media, Kind: vm.Virtio}}

	// First boot: commit.
	v, release := startVM(t, a, bootSpec{arch: "x86_64", disks: disks, name: "boot1"})
	r := waitChecks(t, ctxFor(t), v)
	logPhases(t, "x86_64 persistence boot 1", r.report)
	expectCheck(t, r, "boot", "1")
	expectCheck(t, r, "lbu-include-rc", "0")
	expectCheck(t, r, "lbu-commit-rc", "0")
	t.Logf("guest lbu (%s) commit output: %q", r.checks["lbu-path"], r.lines["lbu-commit"])
	if err := v.Wait(ctxFor(t)); err != nil {
		t.Errorf("guest did not power off after boot 1: %v", err)
	}
	release()
	if t.Failed() {
		t.FailNow()
	}

	// On the host: the new overlay carries the change, the old one became a backup.
	names := fatList(t, media)
	var backups []string
	for _, n := range names {
		if backupRE.MatchString(n) {
			backups = append(backups, n)
		}
	}
	if len(backups) != 1 {
		t.Errorf("media files after lbu commit = %q, want exactly one rbtest.YYYYMMDDhhmmss.tar.gz backup", names)
	}
	files := tarFiles(t, fatRead(t, media, "rbtest.apkovl.tar.gz"))
	if got := strings.TrimSpace(files["root/persist.txt"]); got != token {
		t.Errorf("committed overlay root/persist.txt = %q, want %q (members: %q)", got, token, keys(files))
	}
	if got := strings.TrimSpace(files["etc/motd"]); got != "motd-"+token {
		t.Errorf("committed overlay etc/motd = %q, want %q", got, "motd-"+token)
	}
	if len(backups) == 1 {
		old := tarFiles(t, fatRead(t, media, backups[0]))
		if _, ok := old["root/persist.txt"]; ok {
			t.Errorf("backup %s contains root/persist.txt: it is not the previous overlay", backups[0])
		}
	}

	// Second boot from the same media.
	v2, _ := startVM(t, a, bootSpec{arch: "x86_64", disks: disks, name: "boot2"})
	r2 := waitChecks(t, ctxFor(t), v2)
	logPhases(t, "x86_64 persistence boot 2", r2.report)
	expectCheck(t, r2, "boot", "2")
	expectCheck(t, r2, "persist", token)
	expectCheck(t, r2, "motd", "motd-"+token)
	media2 := fields(r2.checks["media-files"])
	if !media2["rbtest.apkovl.tar.gz"] || len(backups) == 1 && !media2[backups[0]] {
		t.Errorf("guest /media/vda = %q, want rbtest.apkovl.tar.gz and the backup %q", r2.checks["media-files"], backups)
	}
	if len(backups) == 1 && !strings.Contains(strings.Join(r2.lines["backups"], " "), backups[0]) {
		t.Errorf("guest lbu list-backup = %q, want it to list %s", r2.lines["backups"], backups[0])
	}
	if r2.report != nil && (r2.report.Overlay == nil || filepath.Base(r2.report.Overlay.Path) != "rbtest.apkovl.tar.gz") {
		t.Errorf("boot 2 report overlay = %+v, want rbtest.apkovl.tar.gz", r2.report.Overlay)
	}
	if err := v2.Wait(ctxFor(t)); err != nil {
		t.Errorf("guest did not power off after boot 2: %v", err)
	}
}

// tarFiles returns the regular files of a gzip tar by name (without a leading "./").
func tarFiles(t *testing.T, data []byte) map[string]string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("overlay is not gzip: %v", err)
	}
	tr := tar.NewReader(zr)
	files := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("overlay tar: %v", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("overlay tar %s: %v", h.Name, err)
		}
		files[strings.TrimPrefix(h.Name, "./")] = string(b)
	}
	return files
}

func keys(m map[string]string) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	return k
}
