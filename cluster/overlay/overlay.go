// Package overlay is the pod network between nodes: a VXLAN device on each
// node and, for every other node, a route to its pod CIDR through that
// device with static ARP and forwarding entries, so no multicast or
// learning is needed. It is the design flannel's vxlan backend made
// popular, built small: the node's pod CIDR comes from the controller
// manager, the peer's address from its Node's InternalIP, and its VXLAN
// MAC from an annotation each node sets on its own Node. This package
// knows only the kernel's side (netlink); the agent follows the Nodes and
// tells it about peers, so its test builds without the Kubernetes client.
package overlay

import (
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The VXLAN network every node joins. 8472 is the Linux default port,
// which flannel also uses.
const (
	Device = "vxlan.cairn"
	VNI    = 1
	Port   = 8472
	// MACAnnotation on a Node is the MAC of its VXLAN device.
	MACAnnotation = "cairn.dev/vxlan-mac"
	overhead      = 50 // outer Ethernet, IPv4, UDP and VXLAN headers
)

// Overlay keeps this node's VXLAN device and its routes to the other nodes.
type Overlay struct {
	Node   string
	NodeIP net.IP // the address peers send VXLAN packets to
	Log    *slog.Logger
	// Handle is the netlink handle (the current network namespace's
	// rtnetlink if nil).
	Handle *netlink.Handle

	mu    sync.Mutex
	link  netlink.Link
	self  *net.IPNet
	peers map[string]Peer
}

// Peer is where another node's pods are: its pod CIDR, its node address,
// and the MAC of its VXLAN device.
type Peer struct {
	CIDR *net.IPNet
	IP   net.IP
	MAC  net.HardwareAddr
}

func (p Peer) equal(q Peer) bool {
	return p.CIDR.String() == q.CIDR.String() && p.IP.Equal(q.IP) && p.MAC.String() == q.MAC.String()
}

// MAC is the VXLAN device's address for a node: fixed by its name, so a
// restart or reboot does not leave stale entries on the peers.
func MAC(node string) net.HardwareAddr {
	sum := sha256.Sum256([]byte("cairn vxlan " + node))
	mac := net.HardwareAddr(sum[:6])
	mac[0] = mac[0]&^1 | 2 // unicast, locally administered
	return mac
}

// Setup creates the VXLAN device on the interface holding NodeIP (or
// keeps one that matches) and gives it the first address of the node's pod
// CIDR, so traffic from the node to other nodes' pods has an address in the
// pod network that replies come back to.
func (o *Overlay) Setup(cidr *net.IPNet) (netlink.Link, error) {
	if o.Handle == nil {
		// Only rtnetlink: the kernel may lack the other families (xfrm).
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return nil, err
		}
		o.Handle = h
	}
	parent, err := o.linkWithIP(o.NodeIP)
	if err != nil {
		return nil, err
	}
	want := &netlink.Vxlan{
		LinkAttrs: netlink.LinkAttrs{Name: Device, MTU: parent.Attrs().MTU - overhead, HardwareAddr: MAC(o.Node)},
		VxlanId:   VNI, VtepDevIndex: parent.Attrs().Index, SrcAddr: o.NodeIP, Port: Port,
	}
	if old, err := o.Handle.LinkByName(Device); err == nil {
		v, ok := old.(*netlink.Vxlan)
		if ok && v.VxlanId == VNI && v.SrcAddr.Equal(o.NodeIP) && v.Port == Port && v.VtepDevIndex == want.VtepDevIndex &&
			v.HardwareAddr.String() == want.HardwareAddr.String() {
			want = nil
		} else if err := o.Handle.LinkDel(old); err != nil {
			return nil, fmt.Errorf("removing the old %s: %w", Device, err)
		}
	}
	if want != nil {
		if err := o.Handle.LinkAdd(want); err != nil {
			return nil, fmt.Errorf("creating %s (is the vxlan module loaded?): %w", Device, err)
		}
	}
	link, err := o.Handle.LinkByName(Device)
	if err != nil {
		return nil, err
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: cidr.IP, Mask: net.CIDRMask(32, 32)}}
	if err := o.Handle.AddrReplace(link, addr); err != nil {
		return nil, err
	}
	if err := o.Handle.LinkSetUp(link); err != nil {
		return nil, err
	}
	o.mu.Lock()
	o.link, o.self, o.peers = link, cidr, map[string]Peer{}
	o.mu.Unlock()
	return link, nil
}

func (o *Overlay) linkWithIP(ip net.IP) (netlink.Link, error) {
	addrs, err := o.Handle.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, err
	}
	for _, a := range addrs {
		if a.IP.Equal(ip) {
			return o.Handle.LinkByIndex(a.LinkIndex)
		}
	}
	return nil, fmt.Errorf("no interface has the node address %s", ip)
}

// Set routes to the pods of the node name through its VXLAN endpoint
// (after Setup), replacing what an earlier Set of that node installed.
func (o *Overlay) Set(name string, p Peer) {
	if name == o.Node {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if old, ok := o.peers[name]; ok {
		if old.equal(p) {
			return
		}
		o.del(old)
	}
	if err := o.add(p); err != nil {
		o.Log.Error("route to a node's pods", "node", name, "podCIDR", p.CIDR, "err", err)
		return
	}
	o.peers[name] = p
	o.Log.Info("route to a node's pods", "node", name, "podCIDR", p.CIDR, "via", p.IP)
}

// Remove takes away the routes to the pods of the node name, if any.
func (o *Overlay) Remove(name string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if p, ok := o.peers[name]; ok {
		o.del(p)
		delete(o.peers, name)
		o.Log.Info("route to a node's pods removed", "node", name, "podCIDR", p.CIDR)
	}
}

// add installs the three entries for a peer: ARP for its VXLAN address,
// forwarding of that MAC to its node address, and the route.
func (o *Overlay) add(p Peer) error {
	idx := o.link.Attrs().Index
	gw := p.CIDR.IP
	if err := o.Handle.NeighSet(&netlink.Neigh{LinkIndex: idx, Family: unix.AF_INET, State: netlink.NUD_PERMANENT,
		Type: unix.RTN_UNICAST, IP: gw, HardwareAddr: p.MAC}); err != nil {
		return fmt.Errorf("ARP entry: %w", err)
	}
	if err := o.Handle.NeighSet(&netlink.Neigh{LinkIndex: idx, Family: unix.AF_BRIDGE, State: netlink.NUD_PERMANENT,
		Flags: netlink.NTF_SELF, IP: p.IP, HardwareAddr: p.MAC}); err != nil {
		return fmt.Errorf("forwarding entry: %w", err)
	}
	if err := o.Handle.RouteReplace(&netlink.Route{LinkIndex: idx, Dst: p.CIDR, Gw: gw, Flags: int(netlink.FLAG_ONLINK)}); err != nil {
		return fmt.Errorf("route: %w", err)
	}
	return nil
}

func (o *Overlay) del(p Peer) {
	idx := o.link.Attrs().Index
	o.Handle.RouteDel(&netlink.Route{LinkIndex: idx, Dst: p.CIDR})
	o.Handle.NeighDel(&netlink.Neigh{LinkIndex: idx, Family: unix.AF_BRIDGE, Flags: netlink.NTF_SELF, IP: p.IP, HardwareAddr: p.MAC})
	o.Handle.NeighDel(&netlink.Neigh{LinkIndex: idx, Family: unix.AF_INET, IP: p.CIDR.IP, HardwareAddr: p.MAC})
}
