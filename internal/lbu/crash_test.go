package lbu

import (
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ramboot/ramboot/overlay"
)

const crashEnv = "RAMBOOT_LBU_CRASH_ROOT"

// TestCrashChild is the child half of TestCommitSurvivesSIGKILL: it commits in a loop, each
// time with a new generation number in etc/gen, pausing briefly at each commit step so that
// the parent's SIGKILL lands at varied points.
func TestCrashChild(t *testing.T) {
	root := os.Getenv(crashEnv)
	if root == "" {
		t.Skip("helper process for TestCommitSurvivesSIGKILL (runs only when " + crashEnv + " is set)")
	}
	cfg, err := LoadConfig(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	o := &Options{Root: root, Config: cfg, StepHook: func(string) {
		time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
	}}
	for {
		b, _ := os.ReadFile(filepath.Join(root, "etc/gen"))
		gen, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		// etc/gen records the newest generation ever attempted, written before the commit.
		if err := writeFileAtomic(filepath.Join(root, "etc/gen"), []byte(strconv.Itoa(gen+1)+"\n"), 0644); err != nil {
			t.Fatal(err)
		}
		if err := Commit(context.Background(), o, CommitOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// A commit killed with SIGKILL at any point leaves a complete, verifiable overlay under the
// final name: the previous generation or the new one, never none, never a partial file, and
// never a file the boot loader could mistake for an overlay.
func TestCommitSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: skipped in -short mode")
	}
	root := newRoot(t, "LBU_BACKUPDIR=/media/bk\nBACKUP_LIMIT=2\nENCRYPTION=aes-256-cbc\nPASSWORD=pw\n")
	bk := filepath.Join(root, "media/bk")
	os.MkdirAll(bk, 0755)
	os.WriteFile(filepath.Join(root, "etc/gen"), []byte("0\n"), 0644)
	commit(t, root, CommitOptions{})
	final := filepath.Join(bk, "box.apkovl.tar.gz.aes-256-cbc")
	ro := overlay.RestoreOptions{Password: func(string) ([]byte, error) { return []byte("pw"), nil }}

	readGen := func() int {
		t.Helper()
		gz, _, err := overlay.Load(final, ro)
		if err != nil {
			t.Fatalf("overlay at %s does not open: %v", final, err)
		}
		m, err := ReadManifest(gz, 1<<30, true)
		if err != nil {
			t.Fatalf("overlay at %s is damaged: %v", final, err)
		}
		e := m["etc/gen"]
		if e == nil {
			t.Fatalf("overlay at %s lacks etc/gen", final)
		}
		g, err := strconv.Atoi(strings.TrimSpace(string(e.Data)))
		if err != nil {
			t.Fatalf("overlay etc/gen = %q", e.Data)
		}
		return g
	}

	runs := 120
	last := readGen()
	var kept, advanced int
	for i := 0; i < runs; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashEnv+"="+root)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill after 0–120 ms: from before the first commit finishes to several commits in.
		time.Sleep(time.Duration(rand.IntN(120_000)) * time.Microsecond)
		cmd.Process.Signal(syscall.SIGKILL)
		err := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("run %d: child ended on its own (%v), want it killed", i, err)
		}
		g := readGen()
		b, _ := os.ReadFile(filepath.Join(root, "etc/gen"))
		attempted, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if g < last || g > attempted {
			t.Fatalf("run %d: overlay generation %d, want between the previous %d and the attempted %d", i, g, last, attempted)
		}
		if g == last {
			kept++
		} else {
			advanced++
		}
		last = g
		// A killed commit may leave its temporary behind: the boot must never take it for an
		// overlay (it is listed as ignored, with the reason), and nothing else may appear.
		cands, ignored, err := overlay.Scan(bk)
		if err != nil || len(cands) != 1 || cands[0].Path != final {
			t.Fatalf("run %d: boot would see candidates %v (ignored %q), want exactly %s", i, cands, ignored, final)
		}
		for _, ig := range ignored {
			if !strings.HasPrefix(filepath.Base(ig), tempPrefix) {
				t.Fatalf("run %d: overlay.Scan ignored %q, want only temporaries of killed commits", i, ig)
			}
		}
	}
	t.Logf("%d SIGKILLs: %d left the previous overlay, %d left a newer one; all verified", runs, kept, advanced)
	// A later normal commit cleans up any temporaries left by the kills.
	commit(t, root, CommitOptions{})
	for _, n := range listDir(t, bk) {
		if strings.HasPrefix(n, tempPrefix) {
			t.Errorf("temporary %s left after a successful commit", n)
		}
	}
	if g := readGen(); g < last {
		t.Errorf("final commit generation %d < %d", g, last)
	}
}
