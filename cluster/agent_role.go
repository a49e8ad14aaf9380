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
	"sync"
	"time"

	"github.com/cairn-os/cairn/boot"
	"github.com/cairn-os/cairn/cluster/agent"
	"github.com/cairn-os/cairn/cluster/identity"
	"github.com/cairn-os/cairn/cluster/join"
	"github.com/cairn-os/cairn/cluster/server"
	"github.com/cairn-os/cairn/configs"
	"github.com/cairn-os/cairn/internal/retry"
)

// runAgent joins the server named in the config with the image's token,
// retrying with back-off until it is let in, then runs the node and joins
// again whenever its certificates are half-way through their life.
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
	me := join.Agent{Server: c.Server, Token: tok, Node: hostname}
	creds := join.Creds{Dir: filepath.Join(agent.RunDir, "tls"), Server: c.Server}
	resp, err := firstJoin(ctx, log, c, &me, creds)
	if err != nil {
		return err
	}
	node := &agent.Agent{
		Node: agent.Node{
			Name: hostname, IP: me.IPs[0].String(), ClusterCIDR: resp.ClusterCIDR, ClusterDNS: resp.ClusterDNS,
			Domain: resp.Domain, ClientCA: creds.ClientCA(), Labels: c.Labels, Taints: c.Taints,
			TLSCert: creds.Serving(), TLSKey: creds.Serving(),
		},
		Self: self, KubeletKubeconfig: creds.KubeletKubeconfig(), ProxyKubeconfig: creds.ProxyKubeconfig(),
		ExtraArgs: c.ExtraArgs, Log: log, LogDir: server.LogDir,
		Ready: func() {
			if err := boot.WriteHealth("node=ready"); err != nil {
				log.Warn("health file", "err", err)
			}
		},
	}
	renewal := &join.Renewal{Creds: creds, Join: me.Join, Now: time.Now, Log: log}
	return runRenewing(ctx, node, renewal)
}

// firstJoin joins until the server lets this node in, and keeps the
// certificates in creds. It sets me's password and address.
func firstJoin(ctx context.Context, log *slog.Logger, c *configs.Cluster, me *join.Agent, creds join.Creds) (*join.Response, error) {
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
		return nil, err
	}
	me.Password = password
	var resp *join.Response
	err = retry.Until(ctx, join.Backoff, func(ctx context.Context) error {
		ip, err := agentIP(c)
		if err != nil {
			return err
		}
		me.IPs = []net.IP{ip}
		r, keys, err := me.Join(ctx)
		if err != nil {
			return err
		}
		resp = r
		return creds.Write(r, keys)
	}, func(err error, wait time.Duration) {
		log.Error("joining the server failed; retrying", "server", c.Server, "err", err, "in", wait)
	})
	if err != nil {
		return nil, err
	}
	log.Info("joined the server", "server", c.Server, "node", me.Node, "nodeIP", me.IPs[0])
	if damaged {
		if err := join.KeepPassword(pwFile, password); err != nil {
			return nil, err
		}
		log.Info("the server took a new node password; it replaces the damaged one", "file", pwFile)
	}
	return resp, nil
}

// runRenewing runs the node, and renews its certificates while it runs.
func runRenewing(ctx context.Context, node *agent.Agent, renewal *join.Renewal) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { renewal.Run(ctx) })
	err := node.Run(ctx)
	cancel()
	wg.Wait()
	return err
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
