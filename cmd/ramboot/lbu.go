package main

import (
	"os"

	"github.com/ramboot/ramboot/internal/lbu"
)

// cmdLbu is `ramboot lbu [--root DIR] SUBCOMMAND ...` and, through main's argv[0] dispatch,
// `lbu ...` / `lbu_<cmd> ...` in the booted system.
func cmdLbu(args []string) int {
	return lbu.Main(os.Args[0], args)
}
