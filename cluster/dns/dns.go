// Package dns is the cluster's DNS server, run by cairnd on every server:
// it answers <service>.<namespace>.svc.<domain> with the Service's cluster
// IPs, from a watch of the Services, and forwards every other name to the
// node's own resolvers, for pods and nodes only. The kube-dns Service (the address the kubelet puts
// in pods' resolv.conf) points at the servers through an EndpointSlice
// cairn maintains. See docs/adr/0003 for why this replaces CoreDNS.
package dns

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// TTL of the answers for Services: short, as Services come and go.
const TTL = 5

// Records is the table of Service addresses by "name.namespace".
type Records struct {
	mu   sync.RWMutex
	svcs map[string][]net.IP
}

// Set replaces a Service's addresses (none removes it).
func (r *Records) Set(name, namespace string, ips []net.IP) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.svcs == nil {
		r.svcs = map[string][]net.IP{}
	}
	key := name + "." + namespace
	if len(ips) == 0 {
		delete(r.svcs, key)
		return
	}
	r.svcs[key] = ips
}

func (r *Records) get(key string) ([]net.IP, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	ips, ok := r.svcs[key]
	return ips, ok
}

// Server answers DNS queries.
type Server struct {
	Domain    string   // cluster.local
	Upstreams []string // host:port of the resolvers other names go to
	// Clients are the sources whose other names are forwarded (pods, the
	// nodes); others get REFUSED, so the server is no open resolver for
	// whoever reaches its port 53. Loopback always may.
	Clients *Clients
	Records *Records
	Log     *slog.Logger
	client  dns.Client
}

// ServeDNS implements dns.Handler.
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	if len(req.Question) != 1 {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeFormatError)
		w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	zone := dns.Fqdn(s.Domain)
	if name == zone || strings.HasSuffix(name, "."+zone) {
		w.WriteMsg(s.answer(req, q, strings.TrimSuffix(name, "."+zone)))
		return
	}
	if !s.mayRecurse(w.RemoteAddr()) {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeRefused)
		w.WriteMsg(m)
		return
	}
	w.WriteMsg(s.forward(req))
}

// mayRecurse says whether the client at addr is one whose queries for
// names outside the cluster are forwarded.
func (s *Server) mayRecurse(addr net.Addr) bool {
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	return ip.IsLoopback() || s.Clients != nil && s.Clients.allow(ip)
}

// Clients are the sources that may have names outside the cluster
// resolved: fixed networks (the pods', the server's own) and the nodes'
// addresses, which WatchNodes keeps (an agent in another subnet
// masquerades its pods' queries behind its own address).
type Clients struct {
	Nets  []netip.Prefix
	mu    sync.RWMutex
	nodes map[string][]netip.Addr
}

// SetNode records a node's addresses (none forgets the node).
func (c *Clients) SetNode(name string, addrs []netip.Addr) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nodes == nil {
		c.nodes = map[string][]netip.Addr{}
	}
	if len(addrs) == 0 {
		delete(c.nodes, name)
		return
	}
	c.nodes[name] = addrs
}

func (c *Clients) allow(ip netip.Addr) bool {
	if slices.ContainsFunc(c.Nets, func(p netip.Prefix) bool { return p.Contains(ip) }) {
		return true
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, addrs := range c.nodes {
		if slices.Contains(addrs, ip) {
			return true
		}
	}
	return false
}

// answer resolves a name inside the cluster domain (rel is the name
// without it): NAME.NAMESPACE.svc is a Service; anything else does not
// exist.
func (s *Server) answer(req *dns.Msg, q dns.Question, rel string) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	parts := strings.Split(rel, ".")
	var ips []net.IP
	found := false
	if len(parts) == 3 && parts[2] == "svc" {
		ips, found = s.Records.get(parts[0] + "." + parts[1])
	}
	if !found {
		m.SetRcode(req, dns.RcodeNameError)
		m.Ns = []dns.RR{s.soa()}
		return m
	}
	for _, ip := range ips {
		hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: TTL}
		if v4 := ip.To4(); v4 != nil && q.Qtype == dns.TypeA {
			hdr.Rrtype = dns.TypeA
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: v4})
		} else if v4 == nil && q.Qtype == dns.TypeAAAA {
			hdr.Rrtype = dns.TypeAAAA
			m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: ip})
		}
	}
	if len(m.Answer) == 0 { // the name exists, without this record type
		m.Ns = []dns.RR{s.soa()}
	}
	return m
}

func (s *Server) soa() dns.RR {
	zone := dns.Fqdn(s.Domain)
	return &dns.SOA{Hdr: dns.RR_Header{Name: zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: TTL},
		Ns: "ns.dns." + zone, Mbox: "hostmaster." + zone, Serial: 1, Refresh: 7200, Retry: 1800, Expire: 86400, Minttl: TTL}
}

// forward asks the upstream resolvers in turn; SERVFAIL when none answers.
func (s *Server) forward(req *dns.Msg) *dns.Msg {
	for _, up := range s.Upstreams {
		resp, _, err := s.client.Exchange(req, up)
		if err == nil && resp != nil {
			return resp
		}
	}
	m := new(dns.Msg)
	m.SetRcode(req, dns.RcodeServerFailure)
	return m
}

// ListenAndServe serves UDP and TCP on addr until ctx ends.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	if s.client.Timeout == 0 {
		s.client.Timeout = 3 * time.Second
	}
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return fmt.Errorf("cluster DNS: %w", err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		pc.Close()
		return fmt.Errorf("cluster DNS: %w", err)
	}
	servers := []*dns.Server{{PacketConn: pc, Handler: s}, {Listener: l, Handler: s}}
	errs := make(chan error, 2)
	for _, srv := range servers {
		go func() { errs <- srv.ActivateAndServe() }()
	}
	select {
	case <-ctx.Done():
		for _, srv := range servers {
			srv.Shutdown()
		}
		return nil
	case err := <-errs:
		return err
	}
}

// Upstreams reads the name servers of a resolv.conf, skipping those on
// loopback (they would be this server) and the cluster's own address.
func Upstreams(resolvConf string, skip string) []string {
	cfg, err := dns.ClientConfigFromFile(resolvConf)
	if err != nil {
		return nil
	}
	var out []string
	for _, s := range cfg.Servers {
		ip := net.ParseIP(s)
		if ip == nil || ip.IsLoopback() || s == skip {
			continue
		}
		out = append(out, net.JoinHostPort(s, cfg.Port))
	}
	return out
}
