package main

import (
	"context"
	"fmt"

	"github.com/ramboot/ramboot/boot"
)

// install is the world install; wired to internal/apkinstall.Add once it lands.
func install(ctx context.Context, req boot.InstallRequest) (*boot.InstallResult, error) {
	return nil, fmt.Errorf("internal/apkinstall.Add is not available in this build")
}

// lbuMain runs lbu in the booted system; wired to internal/lbu once it lands.
func lbuMain(args []string) int {
	fmt.Println("ramboot lbu: not available in this build")
	return 1
}
