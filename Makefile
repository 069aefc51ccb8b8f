# ramboot — see README.md. ARCH selects the target: x86_64 or aarch64.
#   make                 bin/ramboot (host) and bin/init (ARCH), static and stripped
#   make test            all tests incl. real-apk comparisons and QEMU boots (fetches kernels if root)
#   make qemu-test       only the QEMU boot scenarios, verbose (per-phase boot times in the log)
#   make kernel          Debian cloud kernel for ARCH into build/kernel/ARCH
#   make initramfs       build/ARCH/initramfs
#   make media           build/ARCH/media.fat (MEDIA_FORMAT=iso for an ISO; APKOVL=file to add one)
#   make demo            install what is missing, build everything, boot to the login prompt in QEMU
#   make bench-apk       scripts/bench-apk.sh (ramboot apk vs real apk: time ratio, peak RSS)
#   make bench           bench-apk plus the go test -bench benchmarks
#   make bench-boot      scripts/bench-boot.sh (boot-time medians, QEMU; kernels from make kernels)
ARCH ?= x86_64
GOARCH_x86_64 := amd64
GOARCH_aarch64 := arm64
GOARCH := $(GOARCH_$(ARCH))
ifeq ($(GOARCH),)
$(error ARCH=$(ARCH) is not supported: use x86_64 or aarch64)
endif
GO ?= go
GOFLAGS_BUILD := -trimpath -ldflags='-s -w -buildid='

# Real Alpine data; the aarch64 boot repository available is 3.13.
SHARED ?= ../shared
REPO_x86_64 := $(SHARED)/alpine/v3.19
REPO_aarch64 := $(SHARED)/alpine/v3.13
ALPINE_REPO ?= $(REPO_$(ARCH))
KEYS_DIR ?= $(SHARED)/alpine/keys

KERNEL_DIR := build/kernel/$(ARCH)
OUT := build/$(ARCH)
MEDIA_FORMAT ?= fat
INITRAMFS := $(OUT)/initramfs
MEDIA := $(OUT)/media.$(MEDIA_FORMAT)
APKOVL ?=
TEST_TIMEOUT ?= 40m

.PHONY: all test vet qemu-test kernel kernels initramfs media demo deps bench bench-apk bench-boot clean FORCE
all: bin/ramboot bin/init

bin/ramboot: FORCE
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -o $@ ./cmd/ramboot

bin/init: FORCE
	CGO_ENABLED=0 GOARCH=$(GOARCH) $(GO) build $(GOFLAGS_BUILD) -o $@ ./cmd/init

vet:
	$(GO) vet ./...

# The QEMU tests are an ordinary Go package (qemu-tests/), so `go test ./...` runs them; they build
# the init, the initramfs and media themselves. The kernels are fetched first when possible.
test:
	scripts/test-prereqs.sh
	$(GO) test -timeout $(TEST_TIMEOUT) ./...

qemu-test:
	scripts/test-prereqs.sh
	$(GO) test -timeout $(TEST_TIMEOUT) -v ./qemu-tests/...

deps:
	scripts/install-deps.sh

kernel:
	scripts/fetch-kernel.sh $(ARCH)

kernels:
	scripts/fetch-kernel.sh x86_64
	scripts/fetch-kernel.sh aarch64

initramfs: bin/ramboot bin/init kernel
	@mkdir -p $(OUT)
	bin/ramboot initramfs --out $(INITRAMFS) --arch $(ARCH) --init bin/init \
		--modules-dir $(KERNEL_DIR)/lib/modules/$$(cat $(KERNEL_DIR)/release) --keys-dir $(KEYS_DIR)

media: initramfs
	bin/ramboot media --out $(MEDIA) --format $(MEDIA_FORMAT) --arch $(ARCH) \
		--kernel $(KERNEL_DIR)/vmlinuz --initramfs $(INITRAMFS) --repo $(ALPINE_REPO) \
		$(if $(APKOVL),--apkovl $(APKOVL))

demo: deps
	$(MAKE) media
	$(GO) run ./qemu-tests/cmd/demo -arch $(ARCH) -kernel $(KERNEL_DIR)/vmlinuz \
		-initrd $(INITRAMFS) -media $(MEDIA) -format $(MEDIA_FORMAT)

bench: bench-apk
	$(GO) test -run XXX -bench . ./internal/apkinstall/... ./internal/blkid ./overlay

# ramboot apk add vs the real apk 2.14 (minirootfs chroot): median wall-time ratio and peak RSS.
bench-apk: bin/ramboot
	RAMBOOT=bin/ramboot scripts/bench-apk.sh

# The issue's boot-time set-up 5 times in QEMU: medians of /init to exec and of every phase.
bench-boot: deps kernel
	scripts/bench-boot.sh 5

clean:
	rm -rf bin build/$(ARCH) build/qemu-tests

FORCE:
