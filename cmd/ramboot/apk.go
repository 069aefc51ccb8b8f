package main

import (
	"fmt"
	"os"
)

// cmdApk is a placeholder until its owner lands the real subcommand.
func cmdApk(args []string) int {
	fmt.Fprintln(os.Stderr, "ramboot apk: not implemented yet")
	return 1
}
