package dns

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestAnswers runs the server on loopback with a fake upstream and asks it
// as a pod would.
func TestAnswers(t *testing.T) {
	up := &Server{Domain: "example.test", Records: &Records{}} // stands in for the node's resolver
	up.Records.Set("www", "x", []net.IP{net.ParseIP("192.0.2.7")})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	upAddr := listen(t, ctx, up)

	recs := &Records{}
	recs.Set("hello", "default", []net.IP{net.ParseIP("10.43.0.20")})
	recs.Set("v6", "default", []net.IP{net.ParseIP("fd00::20")})
	srv := &Server{Domain: "cluster.local", Upstreams: []string{"127.0.0.1:1", upAddr}, Records: recs}
	addr := listen(t, ctx, srv)

	cases := []struct {
		name  string
		qtype uint16
		rcode int
		want  string
	}{
		{"hello.default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, "10.43.0.20"},
		{"HELLO.Default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, "10.43.0.20"},
		{"hello.default.svc.cluster.local.", dns.TypeAAAA, dns.RcodeSuccess, ""},
		{"v6.default.svc.cluster.local.", dns.TypeAAAA, dns.RcodeSuccess, "fd00::20"},
		{"gone.default.svc.cluster.local.", dns.TypeA, dns.RcodeNameError, ""},
		{"hello.default.cluster.local.", dns.TypeA, dns.RcodeNameError, ""},
		{"www.x.svc.example.test.", dns.TypeA, dns.RcodeSuccess, "192.0.2.7"}, // forwarded past a dead upstream
	}
	for _, c := range cases {
		for _, proto := range []string{"udp", "tcp"} {
			m := new(dns.Msg)
			m.SetQuestion(c.name, c.qtype)
			cl := dns.Client{Net: proto, Timeout: 5 * time.Second}
			r, _, err := cl.Exchange(m, addr)
			if err != nil {
				t.Fatalf("%s %s: %v", proto, c.name, err)
			}
			got := ""
			if len(r.Answer) > 0 {
				switch a := r.Answer[0].(type) {
				case *dns.A:
					got = a.A.String()
				case *dns.AAAA:
					got = a.AAAA.String()
				}
			}
			if r.Rcode != c.rcode || got != c.want {
				t.Errorf("%s %s %s: rcode %s answer %q, want %s %q", proto, c.name, dns.TypeToString[c.qtype],
					dns.RcodeToString[r.Rcode], got, dns.RcodeToString[c.rcode], c.want)
			}
		}
	}
	recs.Set("hello", "default", nil)
	m := new(dns.Msg)
	m.SetQuestion("hello.default.svc.cluster.local.", dns.TypeA)
	if r, _, err := (&dns.Client{}).Exchange(m, addr); err != nil || r.Rcode != dns.RcodeNameError {
		t.Errorf("a removed Service still answers: %v %v", r, err)
	}
}

func listen(t *testing.T, ctx context.Context, s *Server) string {
	l, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.LocalAddr().String()
	l.Close()
	go s.ListenAndServe(ctx, addr)
	for range 50 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the server did not start on %s", addr)
	return ""
}

// recorder is a dns.ResponseWriter that keeps the reply and claims a
// client address.
type recorder struct {
	dns.ResponseWriter
	from  net.Addr
	reply *dns.Msg
}

func (r *recorder) RemoteAddr() net.Addr      { return r.from }
func (r *recorder) WriteMsg(m *dns.Msg) error { r.reply = m; return nil }

// TestNoOpenResolver asks for an outside name from a pod, a node on the
// server's network, loopback and a stranger: only the stranger is refused,
// and still gets answers for the cluster's own names.
func TestNoOpenResolver(t *testing.T) {
	recs := &Records{}
	recs.Set("hello", "default", []net.IP{net.ParseIP("10.43.0.20")})
	clients := &Clients{Nets: []netip.Prefix{netip.MustParsePrefix("10.42.0.0/16"), netip.MustParsePrefix("192.168.1.0/24")}}
	// An agent in another subnet, whose pods' queries arrive from its address.
	clients.SetNode("edge", []netip.Addr{netip.MustParseAddr("172.16.9.20")})
	clients.SetNode("gone", []netip.Addr{netip.MustParseAddr("172.16.9.21")})
	clients.SetNode("gone", nil)
	srv := &Server{Domain: "cluster.local", Records: recs, Upstreams: nil, Clients: clients}
	for _, tc := range []struct {
		from  net.Addr
		name  string
		rcode int
	}{
		{&net.UDPAddr{IP: net.ParseIP("10.42.1.7"), Port: 5353}, "example.org.", dns.RcodeServerFailure}, // forwarded; no upstream here
		{&net.TCPAddr{IP: net.ParseIP("192.168.1.20"), Port: 5353}, "example.org.", dns.RcodeServerFailure},
		{&net.UDPAddr{IP: net.ParseIP("::ffff:192.168.1.20"), Port: 5353}, "example.org.", dns.RcodeServerFailure},
		{&net.UDPAddr{IP: net.ParseIP("127.0.0.1"), Port: 5353}, "example.org.", dns.RcodeServerFailure},
		{&net.UDPAddr{IP: net.ParseIP("172.16.9.20"), Port: 5353}, "example.org.", dns.RcodeServerFailure},
		{&net.UDPAddr{IP: net.ParseIP("172.16.9.21"), Port: 5353}, "example.org.", dns.RcodeRefused},
		{&net.UDPAddr{IP: net.ParseIP("203.0.113.9"), Port: 5353}, "example.org.", dns.RcodeRefused},
		{&net.UDPAddr{IP: net.ParseIP("203.0.113.9"), Port: 5353}, "hello.default.svc.cluster.local.", dns.RcodeSuccess},
	} {
		m := new(dns.Msg)
		m.SetQuestion(tc.name, dns.TypeA)
		w := &recorder{from: tc.from}
		srv.ServeDNS(w, m)
		if w.reply == nil || w.reply.Rcode != tc.rcode {
			t.Errorf("%s asks %s: %v, want rcode %s", tc.from, tc.name, w.reply, dns.RcodeToString[tc.rcode])
		}
	}
}
