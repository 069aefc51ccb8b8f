# ramboot — see README.md. ARCH selects the target: x86_64 or aarch64.
ARCH ?= x86_64
GOARCH_x86_64 := amd64
GOARCH_aarch64 := arm64
GOARCH := $(GOARCH_$(ARCH))
GO ?= go
GOFLAGS_BUILD := -trimpath -ldflags='-s -w -buildid='

.PHONY: all test vet
all: bin/ramboot bin/init

bin/ramboot: FORCE
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -o $@ ./cmd/ramboot

bin/init: FORCE
	CGO_ENABLED=0 GOARCH=$(GOARCH) $(GO) build $(GOFLAGS_BUILD) -o $@ ./cmd/init

vet:
	$(GO) vet ./...

test:
	$(GO) test ./...

FORCE:
