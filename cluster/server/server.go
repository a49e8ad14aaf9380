package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cairn-os/cairn/boot"
	"github.com/cairn-os/cairn/cluster/agent"
	"github.com/cairn-os/cairn/cluster/dns"
	"github.com/cairn-os/cairn/cluster/identity"
	"github.com/cairn-os/cairn/cluster/join"
	"github.com/cairn-os/cairn/cluster/supervise"
	"github.com/cairn-os/cairn/configs"
	"github.com/cairn-os/cairn/internal/retry"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// DefaultDir is the server's state on the data partition.
const DefaultDir = boot.ServerDir

// Datastore starts the kine endpoint for a datastore URL ("" for SQLite
// under dir) and returns the etcd URL kube-apiserver talks to.
type Datastore func(ctx context.Context, url, dir string) (etcd string, err error)

// Server is one control-plane node.
type Server struct {
	Config    *configs.Config
	Bundle    *identity.Bundle
	Dir       string // state folder (DefaultDir)
	Self      string // this binary, for the component processes
	Datastore Datastore
	Log       *slog.Logger
	LogDir    string // component logs (/var/log/kubernetes)
}

// Run prepares the state folder, starts the datastore and the components,
// reports when the API is ready, and returns when ctx ends.
func (s *Server) Run(ctx context.Context) error {
	p := Paths{Dir: s.Dir}
	hostname, _ := os.Hostname()
	ips := hostIPs()
	c := s.Config.Cluster
	if c.NodeIP.IsValid() && !slices.ContainsFunc(ips, net.IP(c.NodeIP.AsSlice()).Equal) {
		s.Log.Warn("no interface has cluster.nodeIP yet; using it anyway", "nodeIP", c.NodeIP)
	}
	advertise, ips := advertiseAddress(c.NodeIP.Addr, ips)
	if err := writePKI(p, s.Bundle, hostname, ips, time.Now()); err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	if err := writePolicy(p, s.Bundle.EncryptionKey); err != nil {
		return fmt.Errorf("policy files: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(AuditLog), 0o700); err != nil {
		return err
	}
	etcd, err := s.Datastore(ctx, c.Datastore, filepath.Join(s.Dir, "db"))
	if err != nil {
		return fmt.Errorf("datastore: %w", err)
	}
	s.Log.Info("datastore ready", "backend", backendName(c.Datastore), "etcd", etcd)

	admin, err := clientcmd.BuildConfigFromFlags("", p.AdminKubeconfig())
	if err != nil {
		return err
	}
	adminClient, err := kubernetes.NewForConfig(admin)
	if err != nil {
		return err
	}

	var wg sync.WaitGroup
	cluster := join.Cluster{ClusterCIDR: ClusterCIDR, ClusterDNS: ClusterDNSIP, Domain: ClusterDomain}
	joins := &join.Server{Bundle: s.Bundle, Cluster: cluster, Passwords: nodePasswords{adminClient},
		Refusals: nodeRefusals{adminClient}, Reserved: reserved(hostname, ips), Now: time.Now, Log: s.Log}
	wg.Go(func() {
		addr := fmt.Sprintf(":%d", join.Port)
		if err := joins.Listen(ctx, addr, p.tls("apiserver.crt"), p.tls("apiserver.key")); err != nil {
			s.Log.Error("the join endpoint stopped; agents cannot join", "addr", addr, "err", err)
		}
	})
	comps := p.components(etcd, advertise, c.ExtraArgs)
	start := func(c supervise.Component) {
		wg.Add(1)
		go func() { defer wg.Done(); supervise.Run(ctx, s.Log, s.Self, c, s.LogDir) }()
	}
	if cp, ok := supervise.Together(ControlPlane, comps...); ok {
		comps = []supervise.Component{cp} // ADR 0006
	}
	start(comps[0])
	if err := waitReady(ctx, p, 10*time.Minute); err != nil {
		return err
	}
	s.Log.Info("apiserver ready", "url", fmt.Sprintf("https://%s", net.JoinHostPort(advertise.String(), fmt.Sprint(APIPort))))
	if err := boot.WriteHealth("apiserver=ready"); err != nil {
		s.Log.Warn("health file", "err", err)
	}
	for _, c := range comps[1:] {
		start(c)
	}
	s.startDNS(ctx, &wg, adminClient, advertise)
	m, err := newManifests(admin, boot.ManifestsDir, s.Log)
	if err != nil {
		return err
	}
	wg.Go(func() { m.run(ctx) })
	// A server is also a node, so a single server is a usable cluster.
	creds := p.NodeCreds()
	renewal := &join.Renewal{Creds: creds, Now: time.Now, Log: s.Log, Join: func(context.Context) (*join.Response, *join.Keys, error) {
		return join.Issue(s.Bundle, hostname, ips, time.Now())
	}}
	wg.Go(func() { renewal.Run(ctx) })
	node := &agent.Agent{
		Node: agent.Node{
			Name: hostname, IP: advertise.String(), ClusterCIDR: cluster.ClusterCIDR, ClusterDNS: cluster.ClusterDNS,
			Domain: cluster.Domain, ClientCA: creds.ClientCA(), Labels: c.Labels, Taints: c.Taints,
			TLSCert: creds.Serving(), TLSKey: creds.Serving(),
		},
		Self: s.Self, KubeletKubeconfig: creds.KubeletKubeconfig(), ProxyKubeconfig: creds.ProxyKubeconfig(),
		ExtraArgs: c.ExtraArgs, Log: s.Log, LogDir: s.LogDir,
		Ready: func() {
			if err := boot.WriteHealth("apiserver=ready,node=ready"); err != nil {
				s.Log.Warn("health file", "err", err)
			}
		},
	}
	wg.Go(func() {
		if err := node.Run(ctx); err != nil && ctx.Err() == nil {
			s.Log.Error("node", "err", err)
		}
	})
	wg.Wait()
	return nil
}

// startDNS serves cluster DNS on the server's address and points the
// kube-dns Service at it.
func (s *Server) startDNS(ctx context.Context, wg *sync.WaitGroup, cs kubernetes.Interface, self net.IP) {
	recs := &dns.Records{}
	dns.Watch(ctx, cs, recs)
	clients := &dns.Clients{Nets: append(hostNetworks(), netip.MustParsePrefix(ClusterCIDR))}
	dns.WatchNodes(ctx, cs, clients)
	srv := &dns.Server{Domain: ClusterDomain, Upstreams: dns.Upstreams("/etc/resolv.conf", ClusterDNSIP), Records: recs, Log: s.Log,
		Clients: clients}
	wg.Go(func() {
		if err := srv.ListenAndServe(ctx, net.JoinHostPort(self.String(), "53")); err != nil {
			s.Log.Error("cluster DNS stopped", "err", err)
		}
	})
	wg.Go(func() {
		retry.Until(ctx, retry.Backoff{Min: time.Second, Max: time.Minute}, func(ctx context.Context) error {
			return dns.EnsureService(ctx, cs, ClusterDNSIP, self, s.Log)
		}, func(err error, wait time.Duration) {
			s.Log.Warn("cluster DNS service; retrying", "err", err, "in", wait)
		})
	})
}

func backendName(url string) string {
	if url == "" {
		return "sqlite"
	}
	scheme, _, _ := strings.Cut(url, ":")
	return scheme
}

// hostIPs are the node's global unicast addresses, IPv4 first.
func hostIPs() []net.IP {
	var v4, v6 []net.IP
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok || !n.IP.IsGlobalUnicast() {
			continue
		}
		if n.IP.To4() != nil {
			v4 = append(v4, n.IP)
		} else {
			v6 = append(v6, n.IP)
		}
	}
	return append(v4, v6...)
}

// hostNetworks are the networks of the node's global unicast addresses:
// the nodes (and their host-network pods) that may use cluster DNS to
// resolve outside names.
func hostNetworks() []netip.Prefix {
	var out []netip.Prefix
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok || !n.IP.IsGlobalUnicast() {
			continue
		}
		ip, _ := netip.AddrFromSlice(n.IP)
		ones, size := n.Mask.Size()
		if ip = ip.Unmap(); ip.Is4() {
			ones -= size - 32 // a 16-byte mask for an IPv4 address
		}
		out = append(out, netip.PrefixFrom(ip, ones).Masked())
	}
	return out
}

// waitReady polls /readyz with the admin certificate.
func waitReady(ctx context.Context, p Paths, timeout time.Duration) error {
	client, err := adminClient(p)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("https://127.0.0.1:%d/readyz", APIPort), nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("readyz: %s", resp.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
	return fmt.Errorf("the apiserver was not ready within %s: %v", timeout, last)
}

func adminClient(p Paths) (*http.Client, error) {
	data, err := os.ReadFile(p.AdminKubeconfig())
	if err != nil {
		return nil, err
	}
	kc, err := identity.ParseKubeconfig(data)
	if err != nil {
		return nil, err
	}
	tc, err := kc.TLSConfig()
	if err != nil {
		return nil, err
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}, nil
}

// advertiseAddress is the address the apiserver advertises: cluster.nodeIP
// when set (added to the host's addresses if no interface has it yet), else
// the host's first address, else loopback. It returns the host's
// addresses with it.
func advertiseAddress(nodeIP netip.Addr, ips []net.IP) (net.IP, []net.IP) {
	if nodeIP.IsValid() {
		ip := net.IP(nodeIP.AsSlice())
		if !slices.ContainsFunc(ips, ip.Equal) {
			ips = append([]net.IP{ip}, ips...)
		}
		return ip, ips
	}
	if len(ips) > 0 {
		return ips[0], ips
	}
	return net.IPv4(127, 0, 0, 1), ips
}
