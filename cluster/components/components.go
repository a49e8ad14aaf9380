//go:build cairnd

// Package components holds cairnd's multicall entry points for the upstream
// programs: the Kubernetes components, containerd, its runc shim and ctr.
// (containerd's runc shim is a program of its own, cmd/containerd-shim-runc-v2.)
// Each runs in its own process (cairnd re-executes itself with the
// component's name as the first argument, or is started through a symlink
// named after it), as upstream commands install process-wide signal
// handlers, flags and registries that allow one program per process; the
// exceptions are server.ControlPlane, which runs the apiserver, the
// controller-manager and the scheduler in one, and agent.NodeComponents,
// containerd, the kubelet and kube-proxy (ADRs 0006 and 0007).
package components

import (
	"context"
	"fmt"
	"os"
	"sort"

	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"
	kubectl "k8s.io/kubectl/pkg/cmd"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	proxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"

	"github.com/cairn-os/cairn/cluster/agent"
	"github.com/cairn-os/cairn/cluster/components/containerd"
	"github.com/cairn-os/cairn/cluster/server"
)

var entries = map[string]func() *cobra.Command{
	"kube-apiserver":          apiserver.NewAPIServerCommand,
	"kube-controller-manager": controllermanager.NewControllerManagerCommand,
	"kube-scheduler":          func() *cobra.Command { return scheduler.NewSchedulerCommand() },
	"kubelet":                 func() *cobra.Command { return kubelet.NewKubeletCommand(context.Background()) },
	"kube-proxy":              proxy.NewProxyCommand,
	"kubectl":                 kubectl.NewDefaultKubectlCommand,
}

// Names lists every program Run knows, for symlinks and help.
func Names() []string {
	names := []string{"containerd", "ctr"}
	for n := range entries {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Run runs the named program with args and returns its exit code; ok is
// false when name is not one of them.
func Run(ctx context.Context, name string, args []string) (code int, ok bool) {
	switch name {
	case "containerd", "ctr":
		return runContainerd(ctx, name, args), true
	case server.ControlPlane:
		return runControlPlane(args), true
	case agent.NodeComponents:
		return runNodeComponents(args), true
	}
	newCmd, ok := entries[name]
	if !ok {
		return 0, false
	}
	cmd := newCmd()
	cmd.SetArgs(args)
	return cli.Run(cmd), true
}

func runContainerd(ctx context.Context, name string, args []string) int {
	if err := containerdMain(ctx, name, args); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 1
	}
	return 0
}

// containerdMain runs containerd's daemon or ctr.
func containerdMain(ctx context.Context, name string, args []string) error {
	argv := append([]string{name}, args...)
	if name == "ctr" {
		return containerd.Ctr().Run(ctx, argv)
	}
	return containerd.App().Run(ctx, argv)
}
