package main

import (
	"fmt"
	"os"
)

// cmdInitramfs is a placeholder until its owner lands the real subcommand.
func cmdInitramfs(args []string) int {
	fmt.Fprintln(os.Stderr, "ramboot initramfs: not implemented yet")
	return 1
}
