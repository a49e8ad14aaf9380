package overlay

import (
	"bytes"
	"log/slog"
	"net"
	"os"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// inNetns gives a netlink handle on a new network namespace with one
// Ethernet link holding 192.168.77.1/24.
func inNetns(t *testing.T) *netlink.Handle {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	ns, err := netns.New()
	if err != nil {
		t.Fatalf("new network namespace: %v", err)
	}
	netns.Set(orig) // the handle works in ns; this thread goes back
	runtime.UnlockOSThread()
	t.Cleanup(func() { ns.Close(); orig.Close() })
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	// A veth pair: the kernels this runs on do not all have dummy links.
	lan := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "lan0", MTU: 1500}, PeerName: "lan1"}
	if err := h.LinkAdd(lan); err != nil {
		t.Fatal(err)
	}
	addr, _ := netlink.ParseAddr("192.168.77.1/24")
	if err := h.AddrAdd(lan, addr); err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(lan); err != nil {
		t.Fatal(err)
	}
	return h
}

func peer(cidr, ip string, mac net.HardwareAddr) Peer {
	_, c, err := net.ParseCIDR(cidr)
	if err != nil {
		panic(err)
	}
	return Peer{CIDR: c, IP: net.ParseIP(ip).To4(), MAC: mac}
}

func TestOverlayRoutesToPeers(t *testing.T) {
	h := inNetns(t)
	var log bytes.Buffer
	o := &Overlay{Node: "a", NodeIP: net.IPv4(192, 168, 77, 1), Handle: h, Log: slog.New(slog.NewTextHandler(&log, nil))}
	_, cidr, _ := net.ParseCIDR("10.42.0.0/24")
	link, err := o.Setup(cidr)
	if err != nil {
		t.Fatal(err)
	}
	v, ok := link.(*netlink.Vxlan)
	if !ok {
		t.Fatalf("%s is a %s", Device, link.Type())
	}
	if v.VxlanId != VNI || v.Port != Port || !v.SrcAddr.Equal(o.NodeIP) || v.MTU != 1450 || v.HardwareAddr.String() != MAC("a").String() || v.Learning {
		t.Errorf("device: vni %d port %d src %s mtu %d mac %s learning %v", v.VxlanId, v.Port, v.SrcAddr, v.MTU, v.HardwareAddr, v.Learning)
	}
	addrs, _ := h.AddrList(link, netlink.FAMILY_V4)
	if len(addrs) != 1 || addrs[0].IPNet.String() != "10.42.0.0/32" {
		t.Errorf("device addresses %v", addrs)
	}
	// A second start keeps the device.
	again, err := o.Setup(cidr)
	if err != nil || again.Attrs().Index != link.Attrs().Index {
		t.Errorf("second setup: %v, index %d then %d", err, link.Attrs().Index, again.Attrs().Index)
	}

	macB := MAC("b").String()
	o.Set("a", peer("10.42.0.0/24", "192.168.77.1", MAC("a"))) // itself: ignored
	o.Set("b", peer("10.42.1.0/24", "192.168.77.2", MAC("b")))
	routes := func() map[string]string {
		rs, err := h.RouteList(again, netlink.FAMILY_V4)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, r := range rs {
			if r.Dst != nil && r.Gw != nil {
				m[r.Dst.String()] = r.Gw.String()
			}
		}
		return m
	}
	if r := routes(); len(r) != 1 || r["10.42.1.0/24"] != "10.42.1.0" {
		t.Errorf("routes %v, want 10.42.1.0/24 via 10.42.1.0", r)
	}
	arp, _ := h.NeighList(again.Attrs().Index, unix.AF_INET)
	if len(arp) != 1 || !arp[0].IP.Equal(net.IPv4(10, 42, 1, 0)) || arp[0].HardwareAddr.String() != macB || arp[0].State != netlink.NUD_PERMANENT {
		t.Errorf("ARP entries %+v", arp)
	}
	fdb, _ := h.NeighList(again.Attrs().Index, unix.AF_BRIDGE)
	found := false
	for _, e := range fdb {
		if e.HardwareAddr.String() == macB && e.IP.Equal(net.IPv4(192, 168, 77, 2)) {
			found = true
		}
	}
	if !found {
		t.Errorf("no forwarding entry %s → 192.168.77.2 in %+v", macB, fdb)
	}

	// The node moves to another address: the entries follow.
	o.Set("b", peer("10.42.1.0/24", "192.168.77.22", MAC("b")))
	fdb, _ = h.NeighList(again.Attrs().Index, unix.AF_BRIDGE)
	for _, e := range fdb {
		if e.HardwareAddr.String() == macB && !e.IP.Equal(net.IPv4(192, 168, 77, 22)) {
			t.Errorf("stale forwarding entry %+v", e)
		}
	}
	// Deleted: nothing is left.
	o.Remove("b")
	if r := routes(); len(r) != 0 {
		t.Errorf("routes left after the node went: %v", r)
	}
	if arp, _ := h.NeighList(again.Attrs().Index, unix.AF_INET); len(arp) != 0 {
		t.Errorf("ARP entries left: %+v", arp)
	}
}

func TestMACIsStableAndLocal(t *testing.T) {
	a, b := MAC("edge-1"), MAC("edge-2")
	if a.String() != MAC("edge-1").String() || a.String() == b.String() {
		t.Errorf("MAC(edge-1)=%s twice, MAC(edge-2)=%s", a, b)
	}
	if a[0]&1 != 0 || a[0]&2 == 0 {
		t.Errorf("%s is not a unicast, locally administered address", a)
	}
}
