// Package apkarch names machine architectures the way apk does (x86_64, aarch64, …): the
// repository subdirectories, etc/apk/arch and `apk --print-arch`.
package apkarch

import "runtime"

// FromGOARCH maps a GOARCH to apk's architecture name; ppc64le, s390x and riscv64 are spelled
// alike, anything unknown is returned unchanged.
func FromGOARCH(goarch string) string {
	switch goarch {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	case "386":
		return "x86"
	case "arm":
		return "armv7"
	case "loong64":
		return "loongarch64"
	}
	return goarch
}

// Runtime is the apk architecture of the running binary (apk --print-arch).
func Runtime() string { return FromGOARCH(runtime.GOARCH) }

// Known reports whether s is an architecture apk repositories are published for (a repository
// subdirectory name).
func Known(s string) bool {
	switch s {
	case "x86_64", "x86", "aarch64", "armhf", "armv7", "ppc64le", "s390x", "riscv64", "loongarch64":
		return true
	}
	return false
}
