// Package netup brings up network interfaces as the node config says: static
// addresses and routes, or DHCPv4 with lease renewal, and writes the
// resolver settings. It uses netlink and the insomniacslk/dhcp client.
package netup

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cairn-os/cairn/configs"
	"github.com/cairn-os/cairn/internal/retry"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/vishvananda/netlink"
)

// State is what the network learnt, for the resolver, clock and status.
type State struct {
	mu      sync.Mutex
	addrs   map[string]netip.Prefix // interface -> first IPv4 address
	dns     []net.IP
	search  []string
	ntp     []net.IP
	changed chan struct{}
}

// NewState returns an empty state.
func NewState() *State {
	return &State{addrs: map[string]netip.Prefix{}, changed: make(chan struct{}, 1)}
}

// FirstIP is the first configured address, or "none".
func (s *State) FirstIP() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	best := ""
	for name := range s.addrs {
		if best == "" || name < best {
			best = name
		}
	}
	if best == "" {
		return "none"
	}
	return s.addrs[best].Addr().String()
}

// NTP returns the NTP servers DHCP offered.
func (s *State) NTP() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, ip := range s.ntp {
		out = append(out, ip.String())
	}
	return out
}

func (s *State) set(name string, p netip.Prefix, dns, ntp []net.IP, search []string) {
	s.mu.Lock()
	s.addrs[name] = p
	s.dns = appendNew(s.dns, dns)
	s.ntp = appendNew(s.ntp, ntp)
	for _, d := range search {
		if !contains(s.search, d) {
			s.search = append(s.search, d)
		}
	}
	s.mu.Unlock()
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

func appendNew(list, more []net.IP) []net.IP {
	for _, ip := range more {
		found := false
		for _, have := range list {
			found = found || have.Equal(ip)
		}
		if !found {
			list = append(list, ip)
		}
	}
	return list
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// WriteResolvConf writes the config's servers first, then DHCP's.
func (s *State) WriteResolvConf(cfg configs.DNS, file string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	search := append([]string{}, cfg.Search...)
	for _, d := range s.search {
		if !contains(search, d) {
			search = append(search, d)
		}
	}
	if len(search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
	}
	seen := map[string]bool{}
	for _, ip := range cfg.Servers {
		seen[ip.String()] = true
		fmt.Fprintf(&b, "nameserver %s\n", ip)
	}
	for _, ip := range s.dns {
		if !seen[ip.String()] {
			fmt.Fprintf(&b, "nameserver %s\n", ip)
		}
	}
	return os.WriteFile(file, []byte(b.String()), 0o644)
}

// Changed is signalled when an address or server list changes.
func (s *State) Changed() <-chan struct{} { return s.changed }

// match returns the config entry for a link, or nil.
func match(ifs []configs.Interface, l netlink.Link) *configs.Interface {
	for i := range ifs {
		c := &ifs[i]
		if c.MAC != "" {
			if hw, err := net.ParseMAC(c.MAC); err == nil && hw.String() == l.Attrs().HardwareAddr.String() {
				return c
			}
			continue
		}
		if ok, _ := path.Match(c.Name, l.Attrs().Name); ok {
			return c
		}
	}
	return nil
}

// defaultIface is used when the config names no interfaces: DHCP on every
// Ethernet-looking link.
var defaultIface = configs.Interface{Name: "*"}

// Joiner starts joining the config's Wi-Fi networks on a wireless link,
// and returns a channel that receives each time the link joins one.
type Joiner func(iface string) (<-chan struct{}, error)

// Up configures every link the config covers. Static links are set up at
// once; DHCP links get a lease and keep renewing it in the background
// until ctx ends. A wireless link is covered only when the config lists
// Wi-Fi networks: join starts joining them, and the link asks for a lease
// each time it joins one. Up returns once every wired link has its address
// and one link has, or at the end of wait when one has; Wi-Fi links still
// without a lease keep trying in the background.
func Up(ctx context.Context, log *slog.Logger, cfg configs.Network, st *State, wait time.Duration, join Joiner) error {
	lo, err := netlink.LinkByName("lo")
	if err == nil {
		netlink.LinkSetUp(lo)
	}
	deadline := time.Now().Add(wait)
	links, err := listLinks(log, len(cfg.WiFi) > 0, deadline)
	if err != nil {
		return err
	}
	ifs := cfg.Interfaces
	if len(ifs) == 0 {
		ifs = []configs.Interface{defaultIface}
	}
	configured, static := 0, 0
	waiting := map[bool]int{} // links awaiting a first lease, by wireless
	var radios []string       // the Wi-Fi links
	covered := false          // one of them is in the config
	var joinErr error
	type outcome struct {
		radio bool
		err   error
	}
	results := make(chan outcome, len(links))
	for _, l := range links {
		a := l.Attrs()
		if a.Name == "lo" || l.Type() != "device" || len(a.HardwareAddr) == 0 {
			continue
		}
		c := match(ifs, l)
		radio := wireless(a.Name)
		if radio {
			radios = append(radios, a.Name)
		}
		if c == nil {
			continue
		}
		if radio && len(cfg.WiFi) == 0 {
			log.Info("Wi-Fi link left down: network.wifi lists no networks", "iface", a.Name)
			continue
		}
		covered = covered || radio
		var joined <-chan struct{}
		if radio {
			if joined, err = join(a.Name); err != nil {
				log.Error("Wi-Fi", "iface", a.Name, "err", err)
				joinErr = err
				continue
			}
		}
		configured++
		if c.MTU > 0 {
			if err := netlink.LinkSetMTU(l, c.MTU); err != nil {
				log.Warn("cannot set MTU", "iface", a.Name, "mtu", c.MTU, "err", err)
			}
		}
		if err := netlink.LinkSetUp(l); err != nil {
			return fmt.Errorf("%s: link up: %w", a.Name, err)
		}
		dhcp := c.DHCP4 == nil && len(c.Addresses) == 0 || c.DHCP4 != nil && *c.DHCP4
		if len(c.Addresses) > 0 {
			if err := setStatic(l, c, st); err != nil {
				return fmt.Errorf("%s: %w", a.Name, err)
			}
			log.Info("static address", "iface", a.Name, "addr", c.Addresses[0].String())
			static++
		}
		if dhcp {
			waiting[radio]++
			first := make(chan error, 1)
			if radio {
				go dhcpOnJoin(ctx, log, l, st, joined, first)
			} else {
				go dhcpLoop(ctx, log, l, st, first)
			}
			go func() { results <- outcome{radio, <-first} }()
		}
	}
	if len(cfg.WiFi) > 0 && !covered && joinErr == nil {
		if len(radios) == 0 {
			log.Warn("network.wifi lists networks, but this machine has no Wi-Fi link (is its driver or firmware missing?)")
		} else {
			log.Warn("network.wifi lists networks, but network.interfaces covers none of the Wi-Fi links; add one", "links", strings.Join(radios, " "))
		}
	}
	if configured == 0 {
		if joinErr != nil {
			return joinErr
		}
		return fmt.Errorf("no network interface matches the config (links: %s)", linkNames(links))
	}
	ok := static
	var firstErr error
	timeout := time.After(time.Until(deadline))
	for waiting[false]+waiting[true] > 0 && !(waiting[false] == 0 && ok > 0) {
		select {
		case r := <-results:
			waiting[r.radio]--
			if r.err == nil {
				ok++
			} else if firstErr == nil {
				firstErr = r.err
			}
			continue
		case <-timeout:
		}
		break
	}
	if ok == 0 {
		if firstErr != nil {
			return firstErr
		}
		if waiting[false]+waiting[true] > 0 {
			return fmt.Errorf("no DHCP lease within %s; still trying in the background", wait)
		}
	}
	if n := waiting[false] + waiting[true]; n > 0 {
		log.Info("the network is up; links without an address yet keep trying in the background", "waiting", n)
	}
	return nil
}

// listLinks lists the links. When the config names Wi-Fi networks it waits
// a little for a radio, whose driver may make its link only once its
// firmware has loaded, a second or two after the module.
func listLinks(log *slog.Logger, wantRadio bool, deadline time.Time) ([]netlink.Link, error) {
	limit := time.Now().Add(min(20*time.Second, time.Until(deadline)))
	said := false
	for {
		links, err := netlink.LinkList()
		if err != nil || !wantRadio || slices.ContainsFunc(links, func(l netlink.Link) bool { return wireless(l.Attrs().Name) }) || time.Now().After(limit) {
			return links, err
		}
		if !said {
			log.Info("waiting for a Wi-Fi link")
			said = true
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// wireless says whether a link is a Wi-Fi radio's.
func wireless(name string) bool {
	_, err := os.Stat(filepath.Join("/sys/class/net", name, "phy80211"))
	return err == nil
}

// dhcpOnJoin runs a DHCP client on a Wi-Fi link each time it joins a
// network (which may be another one, on another subnet), after the one
// before has stopped. The first lease any of them gets, or the first
// error, is sent on first.
func dhcpOnJoin(ctx context.Context, log *slog.Logger, l netlink.Link, st *State, joined <-chan struct{}, first chan<- error) {
	stop, done := func() {}, make(chan struct{})
	close(done)
	defer func() { stop(); <-done }()
	for {
		select {
		case <-ctx.Done():
			return
		case <-joined:
		}
		stop()
		<-done
		c, cancel := context.WithCancel(ctx)
		stop, done = cancel, make(chan struct{})
		go func(done chan struct{}) {
			defer close(done)
			dhcpLoop(c, log, l, st, first)
		}(done)
	}
}

// metric orders default routes: Ethernet's before Wi-Fi's when both are
// up, and the link's index apart, so that two links' routes coexist.
func metric(l netlink.Link) int {
	base := 100
	if wireless(l.Attrs().Name) {
		base = 600
	}
	return base + l.Attrs().Index
}

func linkNames(links []netlink.Link) string {
	var n []string
	for _, l := range links {
		n = append(n, l.Attrs().Name)
	}
	return strings.Join(n, " ")
}

func setStatic(l netlink.Link, c *configs.Interface, st *State) error {
	for _, p := range c.Addresses {
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
		if err := netlink.AddrReplace(l, addr); err != nil {
			return fmt.Errorf("add %s: %w", p, err)
		}
	}
	for _, gw := range []configs.IP{c.Gateway4, c.Gateway6} {
		if !gw.IsValid() {
			continue
		}
		r := &netlink.Route{LinkIndex: l.Attrs().Index, Gw: gw.AsSlice(), Priority: metric(l)}
		if err := netlink.RouteReplace(r); err != nil {
			// A gateway outside the subnet needs an on-link route first.
			onlink := &netlink.Route{LinkIndex: l.Attrs().Index, Gw: gw.AsSlice(), Flags: int(netlink.FLAG_ONLINK), Priority: metric(l)}
			if err2 := netlink.RouteReplace(onlink); err2 != nil {
				return fmt.Errorf("default route via %s: %w", gw, err)
			}
		}
	}
	var v4 netip.Prefix
	for _, p := range c.Addresses {
		if p.Addr().Is4() {
			v4 = p.Prefix
			break
		}
	}
	if !v4.IsValid() {
		v4 = c.Addresses[0].Prefix
	}
	st.set(l.Attrs().Name, v4, nil, nil, nil)
	return nil
}

// dhcpLoop gets a lease, applies it, and renews it at half its lifetime;
// when renewal fails until the lease runs out it starts over. Its first
// outcome is offered on first, a buffered channel that the loops of one
// link share.
func dhcpLoop(ctx context.Context, log *slog.Logger, l netlink.Link, st *State, first chan<- error) {
	name := l.Attrs().Name
	reported := false
	report := func(err error) { // first may be shared; the first report wins
		if !reported {
			reported = true
			select {
			case first <- err:
			default:
			}
		}
	}
	b := retry.Backoff{Min: time.Second, Max: time.Minute}
	for ctx.Err() == nil {
		c, err := nclient4.New(name, nclient4.WithTimeout(4*time.Second), nclient4.WithRetry(3))
		if err != nil {
			report(err)
			log.Warn("DHCP client", "iface", name, "err", err)
			b.Wait(ctx)
			continue
		}
		lease, err := c.Request(ctx)
		if err != nil {
			c.Close()
			wait := b.Next()
			log.Warn("no DHCP lease yet", "iface", name, "err", err, "retry_in", wait)
			retry.Sleep(ctx, wait)
			continue
		}
		b.Reset()
		if err := apply(l, lease.ACK, st); err != nil {
			report(err)
			log.Error("applying lease", "iface", name, "err", err)
			c.Close()
			continue
		}
		life := lease.ACK.IPAddressLeaseTime(time.Hour)
		log.Info("DHCP lease", "iface", name, "addr", lease.ACK.YourIPAddr.String(), "lease", life)
		report(nil)
		expires := time.Now().Add(life)
		for ctx.Err() == nil {
			wait := time.Until(expires) / 2
			if wait < 5*time.Second {
				wait = 5 * time.Second
			}
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
			if time.Now().After(expires) {
				log.Warn("DHCP lease expired", "iface", name)
				break
			}
			nl, err := c.Renew(ctx, lease)
			if ctx.Err() != nil {
				break
			}
			if err != nil {
				log.Warn("DHCP renewal failed", "iface", name, "err", err)
				continue
			}
			lease = nl
			life = lease.ACK.IPAddressLeaseTime(time.Hour)
			expires = time.Now().Add(life)
			if err := apply(l, lease.ACK, st); err != nil {
				log.Error("applying renewed lease", "iface", name, "err", err)
			}
			log.Info("DHCP lease renewed", "iface", name, "addr", lease.ACK.YourIPAddr.String(), "lease", life)
		}
		c.Close()
	}
}

func apply(l netlink.Link, ack *dhcpv4.DHCPv4, st *State) error {
	mask := ack.SubnetMask()
	if mask == nil {
		mask = ack.YourIPAddr.DefaultMask()
	}
	life := int(ack.IPAddressLeaseTime(time.Hour).Seconds())
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: ack.YourIPAddr, Mask: mask}, ValidLft: life, PreferedLft: life}
	if err := netlink.AddrReplace(l, addr); err != nil {
		return fmt.Errorf("address %s: %w", addr.IPNet, err)
	}
	if r := ack.Router(); len(r) > 0 {
		if err := netlink.RouteReplace(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: r[0], Priority: metric(l)}); err != nil {
			return fmt.Errorf("default route via %s: %w", r[0], err)
		}
	}
	ones, _ := mask.Size()
	ip, _ := netip.AddrFromSlice(ack.YourIPAddr.To4())
	var search []string
	if ds := ack.DomainSearch(); ds != nil {
		search = ds.Labels
	}
	st.set(l.Attrs().Name, netip.PrefixFrom(ip, ones), ack.DNS(), ack.NTPServers(), search)
	return nil
}
