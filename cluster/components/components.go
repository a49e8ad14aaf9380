// Package components holds cairnd's multicall entry points for the upstream
// Kubernetes programs. Each runs in its own process (cairnd re-executes
// itself with the component's name as the first argument), as upstream
// commands install process-wide signal handlers and registries that allow
// one component per process.
package components

import (
	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"
	kubectl "k8s.io/kubectl/pkg/cmd"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
)

var entries = map[string]func() *cobra.Command{
	"kube-apiserver":          apiserver.NewAPIServerCommand,
	"kube-controller-manager": controllermanager.NewControllerManagerCommand,
	"kube-scheduler":          func() *cobra.Command { return scheduler.NewSchedulerCommand() },
	"kubectl":                 kubectl.NewDefaultKubectlCommand,
}

// Run runs the named component with args and returns its exit code; ok is
// false when name is not a component.
func Run(name string, args []string) (code int, ok bool) {
	newCmd, ok := entries[name]
	if !ok {
		return 0, false
	}
	cmd := newCmd()
	cmd.SetArgs(args)
	return cli.Run(cmd), true
}
