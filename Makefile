# Cairn. `make run` builds and boots the default image; `make test` runs the tests.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X github.com/cairn-os/cairn/internal/cli.Version=$(VERSION)
GOFLAGS  := -trimpath
BOARD    ?= qemu-arm64
SOURCES  := $(shell find . -name '*.go' -not -path './out/*') go.mod go.sum $(wildcard boards/*.yaml configs/examples/*.yaml)

.PHONY: all build run test bench deps clean

all: build

# Host CLI and device binaries, rebuilt only when sources change.
build: bin/cairn bin/linux-arm64/init bin/linux-arm64/cairnd bin/linux-amd64/init bin/linux-amd64/cairnd

bin/cairn: $(SOURCES)
	$(GO) build $(GOFLAGS) -ldflags '$(LDFLAGS)' -o $@ ./cmd/cairn

bin/linux-%/init: $(SOURCES)
	CGO_ENABLED=0 GOOS=linux GOARCH=$* $(GO) build $(GOFLAGS) -ldflags '$(LDFLAGS)' -o $@ ./cmd/init

bin/linux-%/cairnd: $(SOURCES)
	CGO_ENABLED=0 GOOS=linux GOARCH=$* $(GO) build $(GOFLAGS) -ldflags '$(LDFLAGS)' -o $@ ./cmd/cairnd

# Installs what the build, the VM and the tests need and lack.
deps:
	@./scripts/deps.sh

out/$(BOARD).img: build
	bin/cairn build --board $(BOARD) --output $@

run: deps out/$(BOARD).img
	bin/cairn vm out/$(BOARD).img

test: deps build
	$(GO) test -timeout 50m ./...

bench: deps build
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 60m ./internal/bench/

clean:
	rm -rf bin out
