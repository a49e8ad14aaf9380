//go:build cairnd

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

// runNodeComponents runs containerd, the kubelet once containerd answers
// and the file named by $CAIRN_KUBELET_AFTER exists (the agent makes it
// when the baked images are imported), and kube-proxy once the file named
// by $CAIRN_PROXY_AFTER exists (the agent makes it when the kubelet has
// registered the node); see runShared.
func runNodeComponents(args []string) int {
	newKubelet := func() *cobra.Command { return kubelet.NewKubeletCommand(context.Background()) }
	return runShared(args, "kubelet", newKubelet, func(parts map[string][]string) {
		go func() { stopOn("containerd", containerdMain(context.Background(), "containerd", parts["containerd"])) }()
		// A first start on a new data partition takes a while under emulation.
		if err := agent.WaitSocket(context.Background(), agent.ContainerdSock, 10*time.Minute); err != nil {
			stopOn("containerd", err)
		}
		waitFile(os.Getenv(agent.KubeletAfterEnv))
		go func() {
			waitFile(os.Getenv(agent.ProxyAfterEnv))
			cmd := proxy.NewProxyCommand()
			cmd.SetArgs(parts["kube-proxy"])
			stopOn("kube-proxy", cli.RunNoErrOutput(cmd))
		}()
	})
}

// waitFile returns once the file at path exists, or at once if path is
// empty.
func waitFile(path string) {
	for path != "" {
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(time.Second)
	}
}
