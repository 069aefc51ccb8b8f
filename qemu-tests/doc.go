// Package qemutests holds ramboot's QEMU boot scenarios (TCG only). The tests build bin/ramboot
// and the init like a user would, build an initramfs and boot media from the real Alpine
// repositories in ../shared/alpine, boot them with QEMU and judge the booted system by marker
// lines that scripts inside the guest print to the serial console. Each boot has a hard timeout,
// at most two VMs run at once, and a failing test prints the console tail (full console logs are
// kept in build/qemu-tests/logs).
//
// The tests skip only when QEMU or a kernel is genuinely missing (scripts/fetch-kernel.sh,
// scripts/install-deps.sh); with RAMBOOT_REQUIRE_QEMU=1 (CI) they fail instead.
package qemutests
