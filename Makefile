# Cairn. `make run` builds and boots the default image; `make test` runs the tests.
GO       ?= go
# A pipe fails when any command in it fails (make test pipes go test).
SHELL    := /bin/bash
.SHELLFLAGS := -o pipefail -c
# Each binary says how long it took to build (scripts/timed).
TIMED     = ./scripts/timed $@
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X github.com/cairn-os/cairn/internal/cli.Version=$(VERSION)
# No DWARF from the compiler: every binary is linked with -w, which drops
# it anyway, and without it the compiler does about a tenth less work. Test
# binaries lose it too (stack traces keep their file:line; a debugger
# needs a build of its own).
# (internal/vmtest builds its test programs with these flags too, to share
# the compiled standard library.)
GOFLAGS  := -trimpath -gcflags=all=-dwarf=false
MODULE   := github.com/cairn-os/cairn
BOARD    ?= qemu-arm64
HOSTARCH := $(shell $(GO) env GOHOSTARCH)
# Kubernetes release built into cairnd (keep in step with go.mod).
K8S_VERSION := v1.37.2
K8S_LDFLAGS := $(foreach p,k8s.io/component-base/version k8s.io/client-go/pkg/version,\
	-X $(p).gitVersion=$(K8S_VERSION) -X $(p).gitMajor=1 -X $(p).gitMinor=37 -X $(p).gitTreeState=clean -X $(p).buildDate=1970-01-01T00:00:00Z)
# cairnd links SQLite (kine) through cgo, statically, for each architecture.
# The packages that link all of Kubernetes build only with the tag cairnd,
# so that a plain go build, vet or test ./... leaves them out.
CAIRND_TAGS := cairnd,netgo,osusergo,sqlite_omit_load_extension
cc = $(if $(filter $(1),$(HOSTARCH)),gcc,$(if $(filter arm64,$(1)),aarch64-linux-gnu-gcc,x86_64-linux-gnu-gcc))
SOURCES  := $(shell find . -name '*.go' -not -name '*_test.go' -not -path './out/*') go.mod go.sum $(wildcard boards/*.yaml configs/examples/*.yaml)

.PHONY: all build run test test-binaries test-k8s fuzz bench deps clean device-arm64 device-amd64 cluster-arm64 cluster-amd64

all: build

# What an image needs from the device binaries: every image runs init; an
# image with a cluster: section also runs cairnd, the runc shim and the pause
# image. Each target builds one architecture, so nothing compiles Kubernetes
# for a machine that nobody boots.
device-arm64 device-amd64: device-%: bin/linux-%/init
cluster-arm64 cluster-amd64: cluster-%: bin/linux-%/init bin/linux-%/cairnd bin/linux-%/pause bin/linux-%/containerd-shim-runc-v2

# Everything, for both architectures.
build: bin/cairn cluster-arm64 cluster-amd64

bin/cairn: $(SOURCES)
	$(TIMED) $(GO) build $(GOFLAGS) -ldflags '$(LDFLAGS)' -o $@ ./cmd/cairn

# init reports the version baked into the image (build.json), so nothing
# is stamped into it.
bin/linux-%/init: $(SOURCES)
	$(TIMED) env CGO_ENABLED=0 GOOS=linux GOARCH=$* $(GO) build $(GOFLAGS) -ldflags '-s -w' -o $@ ./cmd/init

# containerd's runc shim, a program of its own (see its main.go).
bin/linux-%/containerd-shim-runc-v2: cmd/containerd-shim-runc-v2/main.go go.mod go.sum
	$(TIMED) env CGO_ENABLED=0 GOOS=linux GOARCH=$* $(GO) build $(GOFLAGS) -ldflags '-s -w' -o $@ ./cmd/containerd-shim-runc-v2

# The one program of the pause image cairn builds for pod sandboxes.
bin/linux-%/pause: cmd/pause/main.go
	$(TIMED) env CGO_ENABLED=0 GOOS=linux GOARCH=$* $(GO) build $(GOFLAGS) -ldflags '-s -w' -o $@ ./cmd/pause

# The C of SQLite is one compile of about a minute, which go build would
# start last, after all of Kubernetes, with the other core idle: it is
# compiled first, beside the rest, and the build of cairnd then finds it in
# the Go build cache: both builds are CAIRND_BUILD, since any difference
# in environment, tags or compiler flags would miss it.
# (A background job ignores Ctrl-C: the trap stops it, with the C compiler
# in its process group, as does a failure.)
CAIRND_BUILD = env CGO_ENABLED=1 CC=$(call cc,$*) GOOS=linux GOARCH=$* $(GO) build $(GOFLAGS) -tags '$(CAIRND_TAGS)'
bin/linux-%/cairnd: $(SOURCES)
	setsid $(CAIRND_BUILD) github.com/mattn/go-sqlite3 & sqlite=$$!; \
	trap 'kill -- -$$sqlite 2>/dev/null' INT TERM; \
	$(TIMED) $(CAIRND_BUILD) \
		-ldflags '-s -w $(K8S_LDFLAGS) -linkmode external -extldflags -static' -o $@ ./cmd/cairnd; \
	rc=$$?; [ $$rc = 0 ] || kill -- -$$sqlite 2>/dev/null; wait $$sqlite; exit $$rc

# The same Kubernetes release as separate upstream programs, and containerd
# as a program of its own, the way a kubeadm node runs them (arm64 only):
# make bench builds an image with these (cairn build --upstream) to compare.
UPSTREAM := kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy
upstream: $(foreach p,$(UPSTREAM) containerd,bin/upstream-arm64/$(p))

bin/upstream-arm64/containerd: $(SOURCES)
	$(TIMED) env CGO_ENABLED=1 CC=$(call cc,arm64) GOOS=linux GOARCH=arm64 $(GO) build $(GOFLAGS) -tags '$(CAIRND_TAGS)' \
		-ldflags '-s -w -linkmode external -extldflags -static' -o $@ ./cmd/containerd

$(foreach p,$(UPSTREAM),bin/upstream-arm64/$(p)): go.mod go.sum
	$(TIMED) env CGO_ENABLED=1 CC=$(call cc,arm64) GOOS=linux GOARCH=arm64 $(GO) build $(GOFLAGS) -tags '$(CAIRND_TAGS)' \
		-ldflags '-s -w $(K8S_LDFLAGS) -linkmode external -extldflags -static' -o $@ k8s.io/kubernetes/cmd/$(notdir $@)

# Installs what the build, the VM and the tests need and lack.
deps:
	@./scripts/deps.sh

# make run builds only what BOARD and CONFIG need: the board's architecture,
# and cairnd only when the config has a cluster: section.
# CONFIG empty means the built-in default, configs/examples/default.yaml.
CONFIG   ?=
ARCH     := $(if $(filter %-amd64,$(BOARD)),amd64,arm64)
RUN_CFG  := $(or $(CONFIG),configs/examples/default.yaml)
RUN_BINS := bin/cairn $(if $(shell grep -Eqs '^["'"'"']?cluster["'"'"']?[[:space:]]*:' $(RUN_CFG) && echo y),cluster,device)-$(ARCH)

out/$(BOARD).img: $(RUN_BINS) $(RUN_CFG)
	bin/cairn build --board $(BOARD) $(if $(CONFIG),--config $(CONFIG)) --output $@

run: deps out/$(BOARD).img
	bin/cairn vm out/$(BOARD).img

# Without the tag cairnd, ./... leaves out the packages that link all of
# Kubernetes; most of those that use its client libraries are left out too.
# test-k8s builds and tests both for arm64, where the cairnd build has
# compiled those libraries already (compiling them for the host as well
# made a cold CI run minutes longer). The pod network's netlink side,
# cluster/overlay, is tested on the host (QEMU's user-mode emulation does
# not translate netlink dumps) and imports no Kubernetes package; the
# agent follows the Nodes for it.
K8S_CLIENT_PKGS = ./cluster/server ./cluster/agent ./cluster/dns ./cluster/join ./internal/bench ./cmd/containerd-shim-runc-v2
TEST_PKGS = $(filter-out $(patsubst ./%,$(MODULE)/%,$(K8S_CLIENT_PKGS)),$(shell $(GO) list ./...))

# What the tests boot: cluster nodes on arm64 (the faster guest under TCG),
# plain nodes on both architectures. The VM tests run make test-binaries too.
test-binaries: bin/cairn cluster-arm64 device-amd64

# CAIRN_VMTEST turns on the tests that build images and boot them.
# test-k8s and fuzz run beside them, niced: a software-emulated VM keeps
# about one of two cores busy, and they take what the VMs leave. Their log
# follows the tests' (the fuzzers' progress lines only if they failed),
# and then the tests' failures' last messages again, so that the tail of a
# CI log says why. They are started as make, not $(MAKE), so that
# make -n runs nothing, in a process group of their own that stops when
# the tests stop or fail.
test: deps test-binaries
	@mkdir -p out && rm -f out/why.log
	setsid nice -n 10 make --no-print-directory GO='$(GO)' test-k8s fuzz >out/beside.log 2>&1 & side=$$!; \
	trap 'kill -- -$$side 2>/dev/null' EXIT; \
	CAIRN_VMTEST=1 $(GO) test -json -timeout 50m $(GOFLAGS) $(TEST_PKGS) | $(GO) run ./scripts/testsum -why out/why.log; rc=$$?; \
	wait $$side; s=$$?; \
	if [ $$s = 0 ]; then grep -v '^fuzz: elapsed' out/beside.log; else cat out/beside.log; fi; \
	cat out/why.log 2>/dev/null; [ $$rc = 0 ] && [ $$s = 0 ]

# The packages that link all of Kubernetes are checked and tested for arm64,
# the architecture the tests compile it for anyway (under QEMU's user-mode
# emulation on other hosts), so that nothing compiles it for the host.
ARM64_GO   = env CGO_ENABLED=1 CC=$(call cc,arm64) GOOS=linux GOARCH=arm64 $(GO)
ARM64_EXEC = $(if $(filter arm64,$(HOSTARCH)),,-exec qemu-aarch64-static)
K8S_PKGS   = ./cmd/cairnd ./cmd/containerd ./cluster ./cluster/components/... ./cluster/datastore

# (Built as a check, several packages at once, nothing is linked; go vet
# and go test's vet would analyse all of Kubernetes first, minutes more.)
test-k8s: cluster-arm64
	$(TIMED) $(ARM64_GO) build $(GOFLAGS) -tags '$(CAIRND_TAGS)' $(K8S_PKGS)
	$(ARM64_GO) test -json -vet=off $(GOFLAGS) -tags '$(CAIRND_TAGS)' $(ARM64_EXEC) \
		-ldflags '-linkmode external -extldflags -static' ./cluster/components/ ./cluster/datastore $(filter-out ./internal/bench,$(K8S_CLIENT_PKGS)) | $(GO) run ./scripts/testsum

# Each fuzz target of the readers of untrusted input, for a fixed number of
# inputs (about 20 s each on an idle 2-core machine; the same work however
# busy the machine is), or for FUZZTIME if set (make fuzz FUZZTIME=10m).
# What a run finds new is not minimised: a minimisation cut short by the
# deadline fails the run.
FUZZ     = configs:FuzzParse:120000x image/deb:FuzzExtract:18000x image/oci:FuzzInspect:50000x boot/bundle:FuzzRead:600000x image/inspect:FuzzImage:300000x
FUZZTIME ?=

fuzz:
	@for f in $(FUZZ); do \
		pkg=$${f%%:*}; rest=$${f#*:}; name=$${rest%%:*}; n=$${rest#*:}; \
		./scripts/timed "fuzz $$pkg:$$name" $(GO) test $(GOFLAGS) -run '^$$' -fuzz "^$$name$$" -fuzztime $(or $(FUZZTIME),$$n) -fuzzminimizetime 0 ./$$pkg/ || exit 1; \
	done

bench: deps build upstream
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 60m ./internal/bench/

clean:
	rm -rf bin out
