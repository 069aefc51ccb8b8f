package qemutests

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path"
	"sort"
	"strings"
	"testing"
	"time"
)

// ovlEntry is one member of a test apkovl: a file (body), or a symlink (link).
type ovlEntry struct {
	body string
	link string
	mode int64
}

// apkovl builds a gzip tar laid out like one `lbu commit` writes: root-relative names without
// "./", parent directories first, owner root.
type apkovl map[string]ovlEntry

// write stores the overlay as a gzip tar at p.
func (o apkovl) write(t *testing.T, p string) {
	t.Helper()
	names := make([]string, 0, len(o))
	dirs := map[string]bool{}
	for n := range o {
		names = append(names, n)
		for d := path.Dir(n); d != "."; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	for d := range dirs {
		names = append(names, d+"/")
	}
	sort.Strings(names)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	mtime := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, n := range names {
		h := &tar.Header{Name: n, ModTime: mtime, Uname: "root", Gname: "root", Format: tar.FormatUSTAR}
		if strings.HasSuffix(n, "/") {
			h.Typeflag, h.Mode = tar.TypeDir, 0o755
		} else if e := o[n]; e.link != "" {
			h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, e.link, 0o777
		} else {
			h.Typeflag, h.Mode, h.Size = tar.TypeReg, e.mode, int64(len(e.body))
			if h.Mode == 0 {
				h.Mode = 0o644
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write([]byte(o[n].body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// baseOverlay is a minimal real-world apkovl: hostname, world, the default boot services marker,
// the local service (and extra services) in the default runlevel, and a local.d check script
// whose body is checks.
func baseOverlay(hostname string, world []string, services []string, checks string) apkovl {
	o := apkovl{
		"etc/hostname":               {body: hostname + "\n"},
		"etc/apk/world":              {body: strings.Join(world, "\n") + "\n"},
		"etc/.default_boot_services": {body: ""},
		// Every real apkovl has one (setup-interfaces); without it the networking service, and
		// so everything needing net (chronyd), cannot start.
		"etc/network/interfaces":  {body: "auto lo\niface lo inet loopback\n"},
		"etc/local.d/check.start": {body: checkScript(checks), mode: 0o755},
	}
	for _, svc := range append([]string{"local"}, services...) {
		o["etc/runlevels/default/"+svc] = ovlEntry{link: "/etc/init.d/" + svc}
	}
	return o
}

// checkScript wraps test-specific checks in the common frame. It runs detached from the local
// service so OpenRC finishes the runlevel; it first waits until the local service is started
// (OpenRC has then reached the default runlevel), prints RAMBOOT-CHECK key=value lines, the boot
// report as RAMBOOT-OUT bootjson lines, and powers off. Waits are for conditions, bounded, never plain sleeps.
func checkScript(checks string) string {
	return `#!/bin/sh
# ramboot QEMU test: checks printed to the console, then power-off.
(
exec >/dev/console 2>&1 </dev/null
# The PATH of a login shell (/etc/profile), not OpenRC's: commands resolve as for a user.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
check() { echo "RAMBOOT-CHECK $1=$2"; }
out() { key=$1; shift; "$@" 2>&1 | while IFS= read -r l || [ -n "$l" ]; do echo "RAMBOOT-OUT $key $l"; done; }
# waitfor SECONDS CMD...: poll CMD until it succeeds, at most SECONDS of uptime (a command such as
# rc-service can itself take a second under TCG, so iterations are not a measure of time).
now() { cut -d. -f1 /proc/uptime; }
waitfor() { end=$(($(now) + $1)); shift; until "$@" >/dev/null 2>&1; do [ "$(now)" -ge "$end" ] && return 1; sleep 0.2; done; }
waitfor 120 rc-service local status
echo RAMBOOT-CHECK-BEGIN
check runlevel "$(rc-status -r)"
check hostname "$(hostname)"
check root-fstype "$(awk '$2 == "/" { t = $3 } END { print t }' /proc/mounts)"
` + checks + `
# One prefixed echo per line: each is a single write, so a getty banner printed meanwhile can
# only land between lines, and it is ignored.
out bootjson cat /run/ramboot/boot.json
echo RAMBOOT-CHECK-END
# Forced: the clean OpenRC shutdown is covered by the login scenarios and takes tens of seconds
# under TCG.
sync
poweroff -f
) &
`
}
