package components

import (
	"context"
	"os"
	"time"

	"k8s.io/component-base/cli"
	proxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"

	"github.com/cairn-os/cairn/cluster/agent"
	"github.com/cairn-os/cairn/cluster/supervise"
)

// runNodeComponents runs the kubelet, and once the file named by
// $CAIRN_PROXY_AFTER exists (the agent makes it when the kubelet has
// registered the node), kube-proxy beside it. args are
// supervise.Together's. The kubelet owns the process's signal handling and
// its exit ends the process; so does kube-proxy's, and the agent's
// supervisor starts both again.
func runNodeComponents(args []string) int {
	parts := supervise.Parts(args)
	setReapply()
	shareLogging(parts, "kubelet")
	go func() {
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
	}()
	cmd := kubelet.NewKubeletCommand(context.Background())
	cmd.SetArgs(parts["kubelet"])
	return cli.Run(cmd)
}
