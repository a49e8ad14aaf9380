package agent

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cairn-os/cairn/cluster/overlay"
)

// A Node is a peer of the pod network only once it has a pod CIDR, an IPv4
// InternalIP and a published VXLAN MAC; until then the agent has no route
// to it (the overlay's own test checks the routes in a network namespace).
func TestPeerOf(t *testing.T) {
	mac := overlay.MAC("b").String()
	node := func(cidr, mac string, addrs ...corev1.NodeAddress) *corev1.Node {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "b", Annotations: map[string]string{}}, Spec: corev1.NodeSpec{PodCIDR: cidr}}
		if mac != "" {
			n.Annotations[overlay.MACAnnotation] = mac
		}
		n.Status.Addresses = addrs
		return n
	}
	host := corev1.NodeAddress{Type: corev1.NodeHostName, Address: "b"}
	v4 := corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "192.168.77.2"}
	v6 := corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "fd00::2"}
	p, err := peerOf(node("10.42.1.0/24", mac, host, v6, v4))
	if err != nil || p.CIDR.String() != "10.42.1.0/24" || p.IP.String() != "192.168.77.2" || len(p.IP) != 4 || p.MAC.String() != mac {
		t.Errorf("a ready node: %+v, %v", p, err)
	}
	for what, n := range map[string]*corev1.Node{
		"no pod CIDR":       node("", mac, v4),
		"no MAC published":  node("10.42.1.0/24", "", v4),
		"no address":        node("10.42.1.0/24", mac, host),
		"only IPv6 address": node("10.42.1.0/24", mac, v6),
	} {
		if p, err := peerOf(n); err == nil {
			t.Errorf("%s: a peer %+v", what, p)
		}
	}
}
