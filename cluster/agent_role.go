//go:build cairnd

package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/cairn-os/cairn/boot"
	"github.com/cairn-os/cairn/cluster/agent"
	"github.com/cairn-os/cairn/cluster/identity"
	"github.com/cairn-os/cairn/cluster/join"
	"github.com/cairn-os/cairn/cluster/server"
	"github.com/cairn-os/cairn/configs"
	"github.com/cairn-os/cairn/internal/atomicfile"
	"github.com/cairn-os/cairn/internal/retry"
)

// runAgent joins the server named in the config with the image's token,
// retrying with back-off until it is let in, then runs the node.
func runAgent(ctx context.Context, log *slog.Logger) error {
	cfg, _, err := configs.Load(boot.EffectiveConfig)
	if err != nil {
		return err
	}
	c := cfg.Cluster
	if c == nil || c.Role != "agent" {
		return errors.New("the config does not make this node an agent (cluster.role: agent)")
	}
	data, err := os.ReadFile(filepath.Join(boot.ClusterDir, identity.FileToken))
	if err != nil {
		return fmt.Errorf("the image carries no join token (%w); build it with cluster.role: agent", err)
	}
	tok, err := identity.ParseToken(string(data))
	if err != nil {
		return err
	}
	hostname, _ := os.Hostname()
	self, err := os.Executable()
	if err != nil {
		return err
	}

	pwFile := filepath.Join(agent.DefaultDir, "node-password")
	password, err := join.NodePassword(pwFile)
	damaged := errors.Is(err, join.ErrPasswordDamaged)
	if damaged {
		// Join with a new password: the server takes it only when it
		// holds none for this name (the node was retired, or its first
		// join never arrived), and then it is kept.
		log.Error(err.Error())
		password, err = join.NewPassword()
	}
	if err != nil {
		return err
	}
	var nodeIP net.IP
	var keys *join.Keys
	var resp *join.Response
	err = retry.Until(ctx, retry.Backoff{Min: 5 * time.Second, Max: 2 * time.Minute}, func(ctx context.Context) error {
		if nodeIP, err = agentIP(c); err != nil {
			return err
		}
		req, k, err := join.NewRequest(hostname, password, []net.IP{nodeIP})
		if err != nil {
			return err
		}
		keys = k
		resp, err = join.Do(ctx, c.Server, tok, req)
		return err
	}, func(err error, wait time.Duration) {
		log.Error("joining the server failed; retrying", "server", c.Server, "err", err, "in", wait)
	})
	if err != nil {
		return err
	}
	log.Info("joined the server", "server", c.Server, "node", hostname, "nodeIP", nodeIP)
	if damaged {
		if err := join.KeepPassword(pwFile, password); err != nil {
			return err
		}
		log.Info("the server took a new node password; it replaces the damaged one", "file", pwFile)
	}

	dir := filepath.Join(agent.RunDir, "tls")
	kubeletKC, err := identity.Kubeconfig("cairn", c.Server, resp.ServerCA, resp.Kubelet, keys.Kubelet)
	if err != nil {
		return err
	}
	proxyKC, err := identity.Kubeconfig("cairn", c.Server, resp.ServerCA, resp.Proxy, keys.Proxy)
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"client-ca.crt": resp.ClientCA, "kubelet-serving.crt": resp.Serving, "kubelet-serving.key": keys.Serving,
		"kubelet.kubeconfig": kubeletKC, "kube-proxy.kubeconfig": proxyKC,
	}
	for name, data := range files {
		if err := atomicfile.WritePrivate(filepath.Join(dir, name), data); err != nil {
			return err
		}
	}
	kubeconfig := filepath.Join(dir, "kubelet.kubeconfig")
	node := &agent.Agent{
		Node: agent.Node{
			Name: hostname, IP: nodeIP.String(), ClusterCIDR: resp.ClusterCIDR, ClusterDNS: resp.ClusterDNS,
			Domain: resp.Domain, ClientCA: filepath.Join(dir, "client-ca.crt"), Labels: c.Labels, Taints: c.Taints,
			TLSCert: filepath.Join(dir, "kubelet-serving.crt"), TLSKey: filepath.Join(dir, "kubelet-serving.key"),
		},
		Self: self, KubeletKubeconfig: kubeconfig, ProxyKubeconfig: filepath.Join(dir, "kube-proxy.kubeconfig"),
		ExtraArgs: c.ExtraArgs, Log: log, LogDir: server.LogDir,
		Ready: func() {
			if err := boot.WriteHealth("node=ready"); err != nil {
				log.Warn("health file", "err", err)
			}
		},
	}
	return node.Run(ctx)
}

// agentIP is cluster.nodeIP, else the address this machine sends from to
// reach the server.
func agentIP(c *configs.Cluster) (net.IP, error) {
	if c.NodeIP.IsValid() {
		return net.IP(c.NodeIP.AsSlice()), nil
	}
	u, err := url.Parse(c.Server)
	if err != nil {
		return nil, err
	}
	port := u.Port()
	if port == "" {
		port = "443"
	}
	conn, err := net.Dial("udp4", net.JoinHostPort(u.Hostname(), port))
	if err != nil {
		return nil, fmt.Errorf("no route to the server: %w", err)
	}
	defer conn.Close()
	return conn.LocalAddr().(*net.UDPAddr).IP, nil
}
