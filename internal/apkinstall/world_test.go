package apkinstall_test

var (
	baseWorld = []string{"alpine-base", "busybox-mdev-openrc", "ifupdown-ng", "ca-certificates-bundle"}
	bigWorld  = append(append([]string{}, baseWorld...), "openssh", "chrony", "dhcpcd", "e2fsprogs")
)
