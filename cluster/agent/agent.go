package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/client-go/kubernetes"

	"github.com/cairn-os/cairn/boot"
	"github.com/cairn-os/cairn/cluster/supervise"
	"github.com/cairn-os/cairn/internal/atomicfile"
	"github.com/cairn-os/cairn/internal/retry"
)

// Agent is the node side of one machine.
type Agent struct {
	Node              Node
	RunDir            string // RunDir unless set
	Self              string // this binary, for the component processes
	KubeletKubeconfig string
	ProxyKubeconfig   string
	ExtraArgs         map[string][]string
	Log               *slog.Logger
	LogDir            string
	// Ready is called once the node is Ready (for the health file).
	Ready func()

	kubelet, proxy kubernetes.Interface // API clients with each one's identity
}

// Run prepares the host, starts containerd, imports the baked images,
// starts the kubelet and kube-proxy, and returns when ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	if a.RunDir == "" {
		a.RunDir = RunDir
	}
	var err error
	if a.kubelet, err = clientFor(a.KubeletKubeconfig); err != nil {
		return fmt.Errorf("kubelet kubeconfig: %w", err)
	}
	if a.proxy, err = clientFor(a.ProxyKubeconfig); err != nil {
		return fmt.Errorf("kube-proxy kubeconfig: %w", err)
	}
	if err := prepareHost(a.Log); err != nil {
		return err
	}
	if err := masquerade(ctx, a.Node.ClusterCIDR); err != nil {
		return err
	}
	files := map[string]string{
		"containerd.toml": containerdConfig(a.RunDir),
		"cni.template":    cniTemplate,
		"kubelet.yaml":    kubeletConfig(a.Node),
		"kube-proxy.yaml": proxyConfig(a.Node, a.ProxyKubeconfig),
	}
	for name, data := range files {
		if err := atomicfile.WritePrivate(filepath.Join(a.RunDir, name), []byte(data)); err != nil {
			return err
		}
	}
	for _, d := range []string{ContainerdRoot, KubeletRoot, DefaultDir, "/var/log/pods", "/var/log/containers"} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}

	var wg sync.WaitGroup
	component := func(name string, defaults map[string]string) supervise.Component {
		return supervise.Component{Name: name, Args: supervise.Flags(defaults, a.ExtraArgs[name])}
	}
	start := func(c supervise.Component) {
		wg.Go(func() { supervise.Run(ctx, a.Log, a.Self, c, a.LogDir) })
	}
	containerd := component("containerd", map[string]string{"config": filepath.Join(a.RunDir, "containerd.toml")})
	kubelet := component("kubelet", kubeletFlags(a.Node, filepath.Join(a.RunDir, "kubelet.yaml"), a.KubeletKubeconfig))
	proxy := component("kube-proxy", map[string]string{"config": filepath.Join(a.RunDir, "kube-proxy.yaml")})
	// The kubelet starts once the baked images are in containerd; kube-proxy
	// takes the node's addresses from its Node object (and exits when they
	// change), so it starts once the kubelet has registered it. In the
	// shared process each waits for a file made here at that moment.
	startKubelet, startProxy := func() { start(kubelet) }, func() { start(proxy) }
	if node, ok := supervise.Together(NodeComponents, containerd, kubelet, proxy); ok {
		imported, registered := filepath.Join(a.RunDir, "imported"), filepath.Join(a.RunDir, "registered")
		os.Remove(imported)
		os.Remove(registered)
		node.Env = append(node.Env, KubeletAfterEnv+"="+imported, ProxyAfterEnv+"="+registered)
		start(node)
		startKubelet = func() { a.tell(imported, "the kubelet") }
		startProxy = func() { a.tell(registered, "kube-proxy") }
	} else {
		start(containerd)
	}
	if err := WaitSocket(ctx, ContainerdSock, 2*time.Minute); err != nil {
		return fmt.Errorf("containerd: %w", err)
	}
	a.Log.Info("containerd ready", "socket", ContainerdSock)
	if err := importImages(ctx, a.Log, boot.ImagesDir); err != nil {
		// A bad archive must not keep the node from joining; say which.
		a.Log.Error("importing baked images", "err", err)
	}
	startKubelet()
	a.watchReady(ctx, func() {
		startProxy()
		wg.Go(func() {
			b := retry.Backoff{Min: 5 * time.Second, Max: time.Minute}
			for ctx.Err() == nil {
				err := a.runOverlay(ctx)
				if ctx.Err() != nil {
					return
				}
				wait := b.Next()
				a.Log.Error("pod network between nodes failed; retrying", "err", err, "in", wait)
				retry.Sleep(ctx, wait)
			}
		})
	})
	wg.Wait()
	return nil
}

// tell makes the file a component of the shared process waits for.
func (a *Agent) tell(file, component string) {
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		a.Log.Error(component+" cannot be told to start", "err", err)
	}
}

// watchReady calls registered once the node exists, then logs when it
// becomes Ready or stops being Ready, until ctx ends.
func (a *Agent) watchReady(ctx context.Context, registered func()) {
	was := false
	var lastErr string
	fresh := newFreshness()
	for ctx.Err() == nil {
		n, ready, err := nodeReady(ctx, a.kubelet, a.Node.Name, fresh)
		if err == nil {
			a.syncOS(ctx, n)
		}
		if err != nil && err.Error() != lastErr && ctx.Err() == nil {
			a.Log.Info("waiting for the node to register", "node", a.Node.Name, "err", err)
			lastErr = err.Error()
		}
		if err == nil && registered != nil {
			registered()
			registered = nil
		}
		if ready != was {
			if ready {
				a.Log.Info("node ready", "node", a.Node.Name)
				if a.Ready != nil {
					a.Ready()
				}
			} else {
				a.Log.Warn("node not ready", "node", a.Node.Name)
			}
			was = ready
		}
		select {
		case <-ctx.Done():
		case <-time.After(3 * time.Second):
		}
	}
}

// masquerade rewrites the source of pod traffic that leaves the pod
// network, and only that: pods see each other's own addresses across
// nodes.
func masquerade(ctx context.Context, clusterCIDR string) error {
	rule := func(op string) []string {
		return []string{"-w", "-t", "nat", op, "POSTROUTING", "-s", clusterCIDR, "!", "-d", clusterCIDR,
			"-m", "comment", "--comment", "cairn: pod traffic leaving the pod network", "-j", "MASQUERADE"}
	}
	if exec.CommandContext(ctx, "iptables", rule("-C")...).Run() == nil {
		return nil
	}
	out, err := exec.CommandContext(ctx, "iptables", rule("-A")...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("iptables masquerade rule: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// prepareHost sets what the kubelet and the CNI plugins expect of a node:
// shared mount propagation, cgroup v2 controllers delegated from the root,
// forwarding and bridge netfilter.
func prepareHost(log *slog.Logger) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SHARED, ""); err != nil {
		return fmt.Errorf("making mounts shared: %w", err)
	}
	avail, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers")
	if err != nil {
		return fmt.Errorf("cgroup v2 is not mounted at /sys/fs/cgroup: %w", err)
	}
	var enable []string
	for _, c := range strings.Fields(string(avail)) {
		enable = append(enable, "+"+c)
	}
	for _, c := range []string{"cpu", "memory", "pids"} {
		if !slices.Contains(enable, "+"+c) {
			return fmt.Errorf("the kernel lacks the cgroup v2 %s controller the kubelet needs", c)
		}
	}
	if err := os.WriteFile("/sys/fs/cgroup/cgroup.subtree_control", []byte(strings.Join(enable, " ")), 0o644); err != nil {
		return fmt.Errorf("delegating cgroup controllers: %w", err)
	}
	for key, val := range map[string]string{
		"net/ipv4/ip_forward":                 "1",
		"net/ipv6/conf/all/forwarding":        "1",
		"net/bridge/bridge-nf-call-iptables":  "1",
		"net/bridge/bridge-nf-call-ip6tables": "1",
	} {
		if err := os.WriteFile("/proc/sys/"+key, []byte(val), 0o644); err != nil {
			log.Warn("sysctl", "key", strings.ReplaceAll(key, "/", "."), "err", err)
		}
	}
	for key, val := range boot.KubeletSysctls {
		if err := os.WriteFile("/proc/sys/"+strings.ReplaceAll(key, ".", "/"), []byte(val), 0o644); err != nil {
			return fmt.Errorf("setting %s, which the kubelet checks (protectKernelDefaults): %w", key, err)
		}
	}
	return nil
}

// WaitSocket waits until a unix socket accepts connections.
func WaitSocket(ctx context.Context, path string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		var c net.Conn
		if c, err = net.Dial("unix", path); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s did not accept connections within %s: %w", path, timeout, err)
}

var errNoImages = errors.New("no images")
