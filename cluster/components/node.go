package components

import (
	"context"
	"os"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"
	proxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"

	"github.com/cairn-os/cairn/cluster/agent"
)

// runNodeComponents runs the kubelet, and once the file named by
// $CAIRN_PROXY_AFTER exists (the agent makes it when the kubelet has
// registered the node), kube-proxy beside it (see runShared).
func runNodeComponents(args []string) int {
	newKubelet := func() *cobra.Command { return kubelet.NewKubeletCommand(context.Background()) }
	return runShared(args, "kubelet", newKubelet, func(parts map[string][]string) {
		after := os.Getenv(agent.ProxyAfterEnv)
		for after != "" {
			if _, err := os.Stat(after); err == nil {
				break
			}
			time.Sleep(time.Second)
		}
		cmd := proxy.NewProxyCommand()
		cmd.SetArgs(parts["kube-proxy"])
		stopOn("kube-proxy", cli.RunNoErrOutput(cmd))
	})
}
