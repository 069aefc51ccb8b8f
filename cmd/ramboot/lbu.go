package main

import (
	"fmt"
	"os"
)

// cmdLbu is a placeholder until its owner lands the real subcommand.
func cmdLbu(args []string) int {
	fmt.Fprintln(os.Stderr, "ramboot lbu: not implemented yet")
	return 1
}
