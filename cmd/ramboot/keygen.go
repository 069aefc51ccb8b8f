package main

import (
	"fmt"
	"os"
)

// cmdKeygen is a placeholder until its owner lands the real subcommand.
func cmdKeygen(args []string) int {
	fmt.Fprintln(os.Stderr, "ramboot keygen: not implemented yet")
	return 1
}
