package main

import (
	"fmt"
	"os"
)

// cmdMedia is a placeholder until its owner lands the real subcommand.
func cmdMedia(args []string) int {
	fmt.Fprintln(os.Stderr, "ramboot media: not implemented yet")
	return 1
}
