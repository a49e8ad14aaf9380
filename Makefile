# Cairn. `make run` builds and boots the default image; `make test` runs the tests.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X github.com/cairn-os/cairn/internal/cli.Version=$(VERSION)
GOFLAGS  := -trimpath
BOARD    ?= qemu-arm64
HOSTARCH := $(shell $(GO) env GOHOSTARCH)
# Kubernetes release built into cairnd (keep in step with go.mod).
K8S_VERSION := v1.37.2
K8S_LDFLAGS := $(foreach p,k8s.io/component-base/version k8s.io/client-go/pkg/version,\
	-X $(p).gitVersion=$(K8S_VERSION) -X $(p).gitMajor=1 -X $(p).gitMinor=37 -X $(p).gitTreeState=clean -X $(p).buildDate=1970-01-01T00:00:00Z)
# cairnd links SQLite (kine) through cgo, statically, for each architecture.
CAIRND_TAGS := netgo,osusergo,sqlite_omit_load_extension
cc = $(if $(filter $(1),$(HOSTARCH)),gcc,$(if $(filter arm64,$(1)),aarch64-linux-gnu-gcc,x86_64-linux-gnu-gcc))
SOURCES  := $(shell find . -name '*.go' -not -name '*_test.go' -not -path './out/*') go.mod go.sum $(wildcard boards/*.yaml configs/examples/*.yaml)

.PHONY: all build upstream run test bench deps clean

all: build

# Host CLI and device binaries, rebuilt only when sources change.
build: bin/cairn $(foreach a,arm64 amd64,bin/linux-$(a)/init bin/linux-$(a)/pause bin/linux-$(a)/containerd-shim-runc-v2 bin/linux-$(a)/cairnd)

bin/cairn: $(SOURCES)
	$(GO) build $(GOFLAGS) -ldflags '$(LDFLAGS)' -o $@ ./cmd/cairn

bin/linux-%/init: $(SOURCES)
	CGO_ENABLED=0 GOOS=linux GOARCH=$* $(GO) build $(GOFLAGS) -ldflags '$(LDFLAGS)' -o $@ ./cmd/init

# containerd's runc shim, a program of its own (see its main.go).
bin/linux-%/containerd-shim-runc-v2: cmd/containerd-shim-runc-v2/main.go go.mod go.sum
	CGO_ENABLED=0 GOOS=linux GOARCH=$* $(GO) build $(GOFLAGS) -ldflags '-s -w' -o $@ ./cmd/containerd-shim-runc-v2

# The one program of the pause image cairn builds for pod sandboxes.
bin/linux-%/pause: cmd/pause/main.go
	CGO_ENABLED=0 GOOS=linux GOARCH=$* $(GO) build $(GOFLAGS) -ldflags '-s -w' -o $@ ./cmd/pause

bin/linux-%/cairnd: $(SOURCES)
	CGO_ENABLED=1 CC=$(call cc,$*) GOOS=linux GOARCH=$* $(GO) build $(GOFLAGS) -tags '$(CAIRND_TAGS)' \
		-ldflags '$(LDFLAGS) $(K8S_LDFLAGS) -linkmode external -extldflags -static' -o $@ ./cmd/cairnd

# The same Kubernetes release as separate upstream programs, and containerd
# as a program of its own, the way a kubeadm node runs them (arm64 only):
# make bench builds an image with these (cairn build --upstream) to compare.
UPSTREAM := kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy
upstream: $(foreach p,$(UPSTREAM) containerd,bin/upstream-arm64/$(p))

bin/upstream-arm64/containerd: $(SOURCES)
	CGO_ENABLED=1 CC=$(call cc,arm64) GOOS=linux GOARCH=arm64 $(GO) build $(GOFLAGS) -tags '$(CAIRND_TAGS)' \
		-ldflags '-s -w -linkmode external -extldflags -static' -o $@ ./cmd/containerd

$(foreach p,$(UPSTREAM),bin/upstream-arm64/$(p)): go.mod go.sum
	CGO_ENABLED=1 CC=$(call cc,arm64) GOOS=linux GOARCH=arm64 $(GO) build $(GOFLAGS) -tags '$(CAIRND_TAGS)' \
		-ldflags '-s -w $(K8S_LDFLAGS) -linkmode external -extldflags -static' -o $@ k8s.io/kubernetes/cmd/$(notdir $@)

# Installs what the build, the VM and the tests need and lack.
deps:
	@./scripts/deps.sh

out/$(BOARD).img: build
	bin/cairn build --board $(BOARD) --output $@

run: deps out/$(BOARD).img
	bin/cairn vm out/$(BOARD).img

# The packages that link Kubernetes have no unit tests of their own: make build
# compiles them (cgo, static, per architecture) and the VM tests run them.
# Leaving them out here spares a third, host-only compile of Kubernetes.
TEST_PKGS = $(shell $(GO) list ./... | grep -v -e '/cmd/cairnd$$' -e '/cluster$$' -e '/cluster/components$$' -e '/cluster/datastore$$' -e '/cluster/components/containerd$$' -e '/cmd/containerd$$')

test: deps build
	$(GO) test -timeout 50m $(TEST_PKGS)

bench: deps build upstream
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 60m ./internal/bench/

clean:
	rm -rf bin out
