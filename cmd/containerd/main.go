//go:build cairnd

// Command containerd is containerd's daemon with the plugins a Kubernetes
// node needs (the set cairnd's containerd entry links) as a program of its
// own, the way a kubeadm node runs it: make bench's comparison of cairnd
// with separate upstream programs uses it.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/cairn-os/cairn/cluster/components/containerd"
)

func main() {
	if err := containerd.App().Run(context.Background(), os.Args); err != nil {
		fmt.Fprintf(os.Stderr, "containerd: %v\n", err)
		os.Exit(1)
	}
}
