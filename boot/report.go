package boot

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Report is the JSON boot report written to /run/ramboot/boot.json in the booted system.
type Report struct {
	Version int    `json:"version"`
	Cmdline string `json:"cmdline"`
	Kernel  string `json:"kernel,omitempty"`
	// UptimeAtInitMS is the kernel's uptime when /init started (boot time before ramboot).
	UptimeAtInitMS float64       `json:"uptime_at_init_ms,omitempty"`
	Phases         []PhaseReport `json:"phases"`
	TotalMS        float64       `json:"total_ms"` // first phase to exec of init
	// StartupMS is the time from the kernel's exec of /init to the first phase (process start,
	// Go runtime, wiring), from the kernel log's timestamps; InitToExecMS = StartupMS + TotalMS
	// is the whole /init to exec of init. Both 0 when the kernel log could not tell.
	StartupMS    float64        `json:"startup_ms,omitempty"`
	InitToExecMS float64        `json:"init_to_exec_ms,omitempty"`
	Modules      []string       `json:"modules_loaded,omitempty"`
	Media        []Medium       `json:"media,omitempty"`
	MediaLog     []string       `json:"media_log,omitempty"`
	Overlay      *OverlayReport `json:"overlay,omitempty"`
	World        []string       `json:"world,omitempty"`
	Installed    []string       `json:"installed,omitempty"`
	Dropped      []string       `json:"dropped,omitempty"`
	Failed       []string       `json:"failed,omitempty"`
	// InstallMS is where the world install's time went (see apkinstall.Timings).
	InstallMS map[string]float64 `json:"install_timings_ms,omitempty"`
	// PreloadedRepos counts the repositories whose index was loaded during the root and
	// overlay phases (Deps.Preload) and used by the install as it was.
	PreloadedRepos int      `json:"preloaded_repositories,omitempty"`
	Repos          []string `json:"repositories,omitempty"`
	Errors         []string `json:"errors,omitempty"`
	Warnings       []string `json:"warnings,omitempty"`
}

// PhaseReport is the outcome and timing of one phase.
type PhaseReport struct {
	Name       string  `json:"name"`
	Fatal      bool    `json:"fatal"`
	Status     string  `json:"status"` // ok, failed, skipped
	StartMS    float64 `json:"start_ms"`
	DurationMS float64 `json:"duration_ms"`
	// CPUMS is the CPU time PID 1 and its children (package scripts) used in the phase; with
	// duration_ms it shows how busy the phase kept the CPUs (not counted: kernel threads).
	CPUMS float64  `json:"cpu_ms,omitempty"`
	Error string   `json:"error,omitempty"`
	Notes []string `json:"notes,omitempty"` // reasons for waits, choices made
}

// OverlayReport says which apkovl was used and why.
type OverlayReport struct {
	Path     string   `json:"path,omitempty"`
	Source   string   `json:"source,omitempty"` // cmdline, media, backup, none
	Log      []string `json:"log,omitempty"`
	Placed   int      `json:"files_placed"`
	Refused  []string `json:"refused,omitempty"`
	Fallback []string `json:"fallback,omitempty"` // why earlier choices were abandoned
	KeyFile  string   `json:"key_file,omitempty"` // password file used for an encrypted apkovl (apkovl_key=)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// WriteReport writes the report atomically (temp file + rename) so a reader never sees half a file.
func WriteReport(path string, r *Report) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("boot report: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("boot report: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("boot report: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("boot report: %w", err)
	}
	return nil
}
