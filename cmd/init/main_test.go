package main

import (
	"os"

	"github.com/ramboot/ramboot/internal/lbu"
	"testing"
)

func TestAgentDispatch(t *testing.T) {
	tests := []struct {
		args []string
		want int
	}{
		{[]string{"/usr/local/sbin/ramboot", "plan"}, 0},
		{[]string{"/usr/local/sbin/ramboot"}, 2},
		{[]string{"/usr/local/sbin/ramboot", "frobnicate"}, 2},
		// lbu with no subcommand prints its usage and fails (usage exit status 2).
		{[]string{"/usr/local/sbin/lbu"}, 2},
		{[]string{"/usr/local/sbin/ramboot", "lbu", "--help"}, lbu.Main("lbu", []string{"--help"})},
	}
	for _, tt := range tests {
		if got := agent(tt.args); got != tt.want {
			t.Errorf("agent(%q) = %d, want %d", tt.args, got, tt.want)
		}
	}
}

func TestInitEnvHasPath(t *testing.T) {
	t.Setenv("PATH", "")
	os.Unsetenv("PATH")
	found := false
	for _, e := range initEnv() {
		if e == "PATH=/usr/sbin:/usr/bin:/sbin:/bin" {
			found = true
		}
	}
	if !found {
		t.Errorf("initEnv() without PATH = %q, want a default PATH", initEnv())
	}
	if kernelRelease() == "" {
		t.Errorf("kernelRelease() = \"\", want the running kernel's release")
	}
}
