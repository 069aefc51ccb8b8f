// Command tinyinit is a minimal PID 1 that exercises the vm harness: console output, console
// input, a virtio disk, hot-unplug and power-off. It is not part of ramboot.
package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	defer func() {
		unix.Sync()
		_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	}()
	for _, m := range []struct{ src, dst, fs string }{
		{"proc", "/proc", "proc"}, {"sysfs", "/sys", "sysfs"}, {"devtmpfs", "/dev", "devtmpfs"},
	} {
		_ = os.MkdirAll(m.dst, 0o755)
		if err := unix.Mount(m.src, m.dst, m.fs, 0, ""); err != nil {
			fmt.Printf("TINYINIT error mount %s: %v\n", m.dst, err)
			return
		}
	}
	uptime, _ := os.ReadFile("/proc/uptime")
	fmt.Printf("TINYINIT started uptime=%s\n", strings.Fields(string(uptime))[0])
	if list, err := os.ReadFile("/modules.list"); err == nil {
		for _, mod := range strings.Fields(string(list)) {
			f, err := os.Open(mod)
			if err != nil {
				fmt.Printf("TINYINIT error module %s: %v\n", mod, err)
				return
			}
			if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil && err != unix.EEXIST {
				fmt.Printf("TINYINIT error module %s: %v\n", mod, err)
				return
			}
			f.Close()
		}
	}
	fmt.Println("TINYINIT type a line:")
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil {
		fmt.Printf("TINYINIT error read console: %v\n", err)
		return
	}
	fmt.Printf("TINYINIT echo=%s\n", strings.TrimSpace(line))
	if !waitFor(func() bool { _, err := os.Stat("/sys/block/vda"); return err == nil }) {
		fmt.Println("TINYINIT error no vda")
		return
	}
	size, _ := os.ReadFile("/sys/block/vda/size")
	fmt.Printf("TINYINIT vda sectors=%s\n", strings.TrimSpace(string(size)))
	fmt.Println("TINYINIT waiting for unplug")
	if !waitFor(func() bool { _, err := os.Stat("/sys/block/vda"); return err != nil }) {
		fmt.Println("TINYINIT error vda still present")
		return
	}
	fmt.Println("TINYINIT unplugged")
	// Stay up until the host has seen QEMU confirm the removal.
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		fmt.Printf("TINYINIT error read console: %v\n", err)
	}
}

// waitFor polls cond for up to 60 s.
func waitFor(cond func() bool) bool {
	for end := time.Now().Add(60 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return false
}
