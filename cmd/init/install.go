package main

import (
	"fmt"
)

// lbuMain runs lbu in the booted system; wired to internal/lbu once it offers a command entry.
func lbuMain(args []string) int {
	fmt.Println("ramboot lbu: not available in this build; use the ramboot CLI")
	return 1
}
