package agent

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cairn-os/cairn/boot"
)

// Fixed places on the node.
const (
	DefaultDir      = boot.AgentDir      // the agent's own state
	RunDir          = "/run/cairn/agent" // generated configs, rewritten at every start
	ContainerdRoot  = "/var/lib/containerd"
	ContainerdState = "/run/containerd"
	ContainerdSock  = "/run/containerd/containerd.sock"
	KubeletRoot     = "/var/lib/kubelet"
	CNIBinDir       = "/usr/lib/cni" // Debian's containernetworking-plugins
	Namespace       = "k8s.io"       // containerd namespace of the CRI
)

// NodeComponents is cairnd's entry point that runs containerd, the kubelet
// and kube-proxy in one process (ADR 0006); the kubelet starts there once
// containerd answers and the file named by KubeletAfterEnv exists,
// kube-proxy once the file named by ProxyAfterEnv exists.
const (
	NodeComponents  = "node-components"
	KubeletAfterEnv = "CAIRN_KUBELET_AFTER"
	ProxyAfterEnv   = "CAIRN_PROXY_AFTER"
)

// containerdConfig is containerd's config (version 3, containerd 2.x).
func containerdConfig(runDir string) string {
	return fmt.Sprintf(`version = 3
root = %q
state = %q

[grpc]
  address = %q

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = %q

[plugins."io.containerd.cri.v1.runtime".cni]
  bin_dirs = [%q]
  conf_dir = %q
  conf_template = %q
  use_internal_loopback = true
`, ContainerdRoot, ContainerdState, ContainerdSock, boot.PauseImage, CNIBinDir,
		filepath.Join(runDir, "cni"), filepath.Join(runDir, "cni.template"))
}

// cniTemplate is the pod network: containerd fills in the node's pod CIDR.
// Traffic between nodes' pods keeps its addresses (the agent masquerades
// only what leaves the pod network), so the bridge plugin does not.
const cniTemplate = `{
  "cniVersion": "1.0.0",
  "name": "cairn",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "/var/lib/cairn/agent/ipam",
        "ranges": [[{"subnet": "{{.PodCIDR}}"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`

// Node is what the kubelet and kube-proxy configs need to know.
type Node struct {
	Name        string
	IP          string
	ClusterCIDR string // all pods
	ClusterDNS  string
	Domain      string
	ClientCA    string // file: CA of client certificates the kubelet accepts
	TLSCert     string // files: the kubelet's serving certificate and key
	TLSKey      string
	Labels      map[string]string
	Taints      []string
}

// kubeletConfig is a KubeletConfiguration for cgroup v2 without systemd,
// with the thresholds of a small edge disk. Containers get the runtime's
// default seccomp profile; the kubelet refuses to start when the kernel
// settings it relies on differ from boot.KubeletSysctls (set before it starts),
// and serves TLS 1.2 or later.
func kubeletConfig(n Node) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: %q}
authorization:
  mode: Webhook
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://%s
clusterDNS: [%q]
clusterDomain: %q
failSwapOn: false
resolvConf: /etc/resolv.conf
serializeImagePulls: false
evictionHard:
  memory.available: 50Mi
  nodefs.available: 5%%
  imagefs.available: 5%%
imageGCHighThresholdPercent: 95
imageGCLowThresholdPercent: 90
readOnlyPort: 0
volumePluginDir: /var/lib/kubelet/volumeplugins
healthzBindAddress: 127.0.0.1
rotateCertificates: false
serverTLSBootstrap: false
tlsCertFile: %q
tlsPrivateKeyFile: %q
tlsMinVersion: VersionTLS12
protectKernelDefaults: true
seccompDefault: true
`, n.ClientCA, ContainerdSock, n.ClusterDNS, n.Domain, n.TLSCert, n.TLSKey)
}

// kubeletFlags are the kubelet's flags besides its config file.
func kubeletFlags(n Node, config, kubeconfig string) map[string]string {
	f := map[string]string{
		"config":            config,
		"kubeconfig":        kubeconfig,
		"hostname-override": n.Name,
		"root-dir":          KubeletRoot,
		"cert-dir":          filepath.Join(KubeletRoot, "pki"),
	}
	if n.IP != "" {
		f["node-ip"] = n.IP
	}
	if len(n.Labels) > 0 {
		var l []string
		for k, v := range n.Labels {
			l = append(l, k+"="+v)
		}
		f["node-labels"] = strings.Join(slices.Sorted(slices.Values(l)), ",")
	}
	if len(n.Taints) > 0 {
		f["register-with-taints"] = strings.Join(n.Taints, ",")
	}
	return f
}

// proxyConfig is kube-proxy in iptables mode (iptables-nft from Debian).
// Conntrack limits are left to the kernel.
func proxyConfig(n Node, kubeconfig string) string {
	return fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: %q
hostnameOverride: %q
mode: iptables
clusterCIDR: %q
metricsBindAddress: 127.0.0.1:10249
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
`, kubeconfig, n.Name, n.ClusterCIDR)
}
