package main

import (
	"fmt"
	"os"
)

// cmdIndex is a placeholder until its owner lands the real subcommand.
func cmdIndex(args []string) int {
	fmt.Fprintln(os.Stderr, "ramboot index: not implemented yet")
	return 1
}
