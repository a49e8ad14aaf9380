// Package overlay is the pod network between nodes: a VXLAN device on each
// node and, for every other node, a route to its pod CIDR through that
// device with static ARP and forwarding entries, so no multicast or
// learning is needed. It is the design flannel's vxlan backend made
// popular, built small: the node's pod CIDR comes from the controller
// manager, the peer's address from its Node's InternalIP, and its VXLAN
// MAC from an annotation each node sets on its own Node.
package overlay

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/cairn-os/cairn/internal/retry"
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
	// Watch reads all Nodes (kube-proxy's identity may; a kubelet's may
	// only read its own Node); Self patches this node's annotation. Only
	// the Nodes client: the test of this package is compiled for the host,
	// and the whole clientset with its informers took minutes of CI.
	Watch, Self corev1client.NodesGetter
	Log         *slog.Logger
	// Handle is the netlink handle (the current network namespace if nil).
	Handle *netlink.Handle

	mu    sync.Mutex
	link  netlink.Link
	self  *net.IPNet
	peers map[string]peer
}

type peer struct {
	cidr *net.IPNet
	ip   net.IP
	mac  net.HardwareAddr
}

// Run waits for the node's pod CIDR, sets up the device, publishes its
// MAC, and then follows the other nodes until ctx ends.
func (o *Overlay) Run(ctx context.Context) error {
	if o.Handle == nil {
		// Only rtnetlink: the kernel may lack the other families (xfrm).
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return err
		}
		o.Handle = h
	}
	cidr, err := o.waitPodCIDR(ctx)
	if err != nil {
		return err
	}
	link, err := o.Setup(cidr)
	if err != nil {
		return fmt.Errorf("VXLAN device: %w", err)
	}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, MACAnnotation, link.Attrs().HardwareAddr)
	err = retry.Until(ctx, retry.Backoff{Min: time.Second, Max: time.Minute}, func(ctx context.Context) error {
		_, err := o.Self.Nodes().Patch(ctx, o.Node, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
		return err
	}, func(err error, wait time.Duration) {
		o.Log.Warn("publishing the VXLAN MAC; retrying", "err", err, "in", wait)
	})
	if err != nil {
		return err
	}
	o.Log.Info("pod network ready", "device", Device, "podCIDR", cidr, "mac", link.Attrs().HardwareAddr)

	lw := &cache.ListWatch{
		ListFunc:  func(opts metav1.ListOptions) (runtime.Object, error) { return o.Watch.Nodes().List(ctx, opts) },
		WatchFunc: func(opts metav1.ListOptions) (watch.Interface, error) { return o.Watch.Nodes().Watch(ctx, opts) },
	}
	inf := cache.NewSharedIndexInformer(lw, &corev1.Node{}, 10*time.Minute, cache.Indexers{})
	inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { o.Set(obj) },
		UpdateFunc: func(_, obj any) { o.Set(obj) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if n, ok := obj.(*corev1.Node); ok {
				o.remove(n.Name)
			}
		},
	})
	inf.Run(ctx.Done())
	return nil
}

func (o *Overlay) waitPodCIDR(ctx context.Context) (*net.IPNet, error) {
	var last string
	for {
		n, err := o.Self.Nodes().Get(ctx, o.Node, metav1.GetOptions{})
		if err == nil && n.Spec.PodCIDR != "" {
			_, cidr, err := net.ParseCIDR(n.Spec.PodCIDR)
			return cidr, err
		}
		msg := "no pod CIDR assigned yet"
		if err != nil {
			msg = err.Error()
		}
		if msg != last {
			o.Log.Info("pod network waits for the node's pod CIDR", "node", o.Node, "status", msg)
			last = msg
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
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
	o.link, o.self, o.peers = link, cidr, map[string]peer{}
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

// Set routes to the pods of the Node obj through its VXLAN endpoint, or
// removes the route when the Node no longer says where they are.
func (o *Overlay) Set(obj any) {
	n, ok := obj.(*corev1.Node)
	if !ok || n.Name == o.Node {
		return
	}
	p, err := peerOf(n)
	if err != nil {
		o.remove(n.Name)
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if old, ok := o.peers[n.Name]; ok {
		if old.cidr.String() == p.cidr.String() && old.ip.Equal(p.ip) && old.mac.String() == p.mac.String() {
			return
		}
		o.del(old)
	}
	if err := o.add(p); err != nil {
		o.Log.Error("route to a node's pods", "node", n.Name, "podCIDR", p.cidr, "err", err)
		return
	}
	o.peers[n.Name] = p
	o.Log.Info("route to a node's pods", "node", n.Name, "podCIDR", p.cidr, "via", p.ip)
}

func peerOf(n *corev1.Node) (peer, error) {
	var p peer
	_, cidr, err := net.ParseCIDR(n.Spec.PodCIDR)
	if err != nil {
		return p, err
	}
	mac, err := net.ParseMAC(n.Annotations[MACAnnotation])
	if err != nil {
		return p, err
	}
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			if ip := net.ParseIP(a.Address); ip != nil && ip.To4() != nil {
				return peer{cidr: cidr, ip: ip.To4(), mac: mac}, nil
			}
		}
	}
	return p, errors.New("no IPv4 InternalIP")
}

func (o *Overlay) remove(name string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if p, ok := o.peers[name]; ok {
		o.del(p)
		delete(o.peers, name)
		o.Log.Info("route to a node's pods removed", "node", name, "podCIDR", p.cidr)
	}
}

// add installs the three entries for a peer: ARP for its VXLAN address,
// forwarding of that MAC to its node address, and the route.
func (o *Overlay) add(p peer) error {
	idx := o.link.Attrs().Index
	gw := p.cidr.IP
	if err := o.Handle.NeighSet(&netlink.Neigh{LinkIndex: idx, Family: unix.AF_INET, State: netlink.NUD_PERMANENT,
		Type: unix.RTN_UNICAST, IP: gw, HardwareAddr: p.mac}); err != nil {
		return fmt.Errorf("ARP entry: %w", err)
	}
	if err := o.Handle.NeighSet(&netlink.Neigh{LinkIndex: idx, Family: unix.AF_BRIDGE, State: netlink.NUD_PERMANENT,
		Flags: netlink.NTF_SELF, IP: p.ip, HardwareAddr: p.mac}); err != nil {
		return fmt.Errorf("forwarding entry: %w", err)
	}
	if err := o.Handle.RouteReplace(&netlink.Route{LinkIndex: idx, Dst: p.cidr, Gw: gw, Flags: int(netlink.FLAG_ONLINK)}); err != nil {
		return fmt.Errorf("route: %w", err)
	}
	return nil
}

func (o *Overlay) del(p peer) {
	idx := o.link.Attrs().Index
	o.Handle.RouteDel(&netlink.Route{LinkIndex: idx, Dst: p.cidr})
	o.Handle.NeighDel(&netlink.Neigh{LinkIndex: idx, Family: unix.AF_BRIDGE, Flags: netlink.NTF_SELF, IP: p.ip, HardwareAddr: p.mac})
	o.Handle.NeighDel(&netlink.Neigh{LinkIndex: idx, Family: unix.AF_INET, IP: p.cidr.IP, HardwareAddr: p.mac})
}
