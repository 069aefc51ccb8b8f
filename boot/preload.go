package boot

import (
	"context"
	"fmt"
	"time"
)

// preloadDone is the outcome of the background index load.
type preloadDone struct {
	v    any
	err  error
	took time.Duration
}

// startPreload loads the repositories' indexes in the background as soon as the media phase
// knows them: the load (signature checks and parsing, 60-110 ms in a small guest) then overlaps
// the root and overlay phases instead of starting the world phase. The initramfs keys are the
// ones the install trusts unless the overlay adds keys; the installer checks that and loads
// again if anything differs, so the preload can never widen what is trusted.
func (s *state) startPreload(ctx context.Context) {
	e := s.env
	if e.Deps.Preload == nil || s.preload != nil || len(s.repos) == 0 {
		return
	}
	req := InstallRequest{Repos: append([]string(nil), s.repos...), KeysDir: e.path("etc/apk/keys"), Arch: e.Arch}
	done := make(chan preloadDone, 1)
	s.preload = done
	start := e.Now()
	go func() {
		defer func() {
			// PID 1 must never die: a panic here is a failed preload (the install loads).
			if r := recover(); r != nil {
				done <- preloadDone{err: fmt.Errorf("panic: %v", r)}
			}
		}()
		v, err := e.Deps.Preload(ctx, req)
		done <- preloadDone{v: v, err: err, took: e.Now().Sub(start)}
	}()
}

// joinPreload waits for the background index load and returns its result (nil when none ran
// or it failed: the install then loads as without a preload, and reports any error itself).
func (s *state) joinPreload() any {
	if s.preload == nil {
		return nil
	}
	t0 := s.env.Now()
	d := <-s.preload
	s.preload = nil
	if d.err != nil {
		s.env.Log.Debugf("world", "index preload: %v", d.err)
		return nil
	}
	s.note("indexes preloaded in %.0f ms (waited %.0f ms)", ms(d.took), ms(s.env.Now().Sub(t0)))
	return d.v
}
