// Command containerd-shim-runc-v2 is containerd's runc shim, built from the
// containerd module cairnd links. It is a program of its own, not one of
// cairnd's names: a shim loads every plugin registered in its process, and
// in cairnd those include containerd's daemon plugins, which fail there.
package main

import (
	"context"

	"github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2/manager"
	_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2/task/plugin"
	"github.com/containerd/containerd/v2/pkg/shim"
)

func main() {
	shim.RunShim(context.Background(), manager.NewShimManager("io.containerd.runc.v2"))
}
