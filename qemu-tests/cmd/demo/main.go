// Command demo boots ramboot media in QEMU (TCG), shows the serial console until the Alpine login
// prompt appears, then stops the VM. `make demo` runs it; it exits non-zero (with the console
// tail) if the prompt does not appear within -timeout.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/ramboot/ramboot/qemu-tests/vm"
)

func main() {
	os.Exit(run())
}

func run() int {
	arch := flag.String("arch", "x86_64", "guest architecture: x86_64 or aarch64")
	kernel := flag.String("kernel", "", "kernel image")
	initrd := flag.String("initrd", "", "initramfs")
	media := flag.String("media", "", "boot media image (FAT or ISO)")
	format := flag.String("format", "fat", "media format: fat (virtio disk) or iso (CD drive)")
	appendArgs := flag.String("append", "quiet", "extra kernel command line")
	timeout := flag.Duration("timeout", 10*time.Minute, "give up if no login prompt appears within this time")
	flag.Parse()
	if *kernel == "" || *initrd == "" || *media == "" {
		fmt.Fprintln(os.Stderr, "demo: -kernel, -initrd and -media are required")
		flag.Usage()
		return 2
	}
	disk := vm.Disk{ID: "media", Path: *media, Kind: vm.Virtio}
	switch *format {
	case "fat":
	case "iso":
		disk.Kind = vm.CDROM
	default:
		fmt.Fprintf(os.Stderr, "demo: -format %q: want fat or iso\n", *format)
		return 2
	}
	cfg := vm.Config{
		Arch: *arch, Kernel: *kernel, Initrd: *initrd, Append: *appendArgs,
		Disks: []vm.Disk{disk}, Timeout: *timeout + 30*time.Second,
		OnLine: func(l vm.Line) { fmt.Println(l.Text) },
	}
	if args, err := vm.Args(cfg, ""); err == nil {
		fmt.Printf("demo: booting %s (TCG): qemu %v\n", *arch, args)
	}
	v, err := vm.Start(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		return 1
	}
	defer v.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := v.ExpectPrompt(ctx, "login: "); err != nil {
		fmt.Fprintf(os.Stderr, "\ndemo: no login prompt: %v\n%s", err, v.Tail(60))
		return 1
	}
	fmt.Printf("login: \ndemo: reached the Alpine login prompt after %v; stopping the VM\n", v.Elapsed().Round(100*time.Millisecond))
	return 0
}
