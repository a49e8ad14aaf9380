package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"

	"github.com/cairn-os/cairn/cluster/overlay"
	"github.com/cairn-os/cairn/internal/retry"
)

// runOverlay keeps the VXLAN routes to the other nodes' pods: it waits for
// this node's pod CIDR, sets up the device, publishes its MAC on the Node
// as the kubelet, and then follows all Nodes as kube-proxy (the Node
// authorizer lets a kubelet read only its own) until ctx ends.
func (a *Agent) runOverlay(ctx context.Context) error {
	ip := net.ParseIP(a.Node.IP)
	if ip == nil || ip.To4() == nil {
		return fmt.Errorf("the pod network needs the node's IPv4 address, not %q", a.Node.IP)
	}
	o := &overlay.Overlay{Node: a.Node.Name, NodeIP: ip.To4(), Log: a.Log}
	self, all := a.kubelet.CoreV1().Nodes(), a.proxy.CoreV1().Nodes()
	cidr, err := a.waitPodCIDR(ctx)
	if err != nil {
		return err
	}
	link, err := o.Setup(cidr)
	if err != nil {
		return fmt.Errorf("VXLAN device: %w", err)
	}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, overlay.MACAnnotation, link.Attrs().HardwareAddr)
	err = retry.Until(ctx, retry.Backoff{Min: time.Second, Max: time.Minute}, func(ctx context.Context) error {
		_, err := self.Patch(ctx, a.Node.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
		return err
	}, func(err error, wait time.Duration) {
		a.Log.Warn("publishing the VXLAN MAC; retrying", "err", err, "in", wait)
	})
	if err != nil {
		return err
	}
	a.Log.Info("pod network ready", "device", overlay.Device, "podCIDR", cidr, "mac", link.Attrs().HardwareAddr.String())

	set := func(obj any) {
		if n, ok := obj.(*corev1.Node); ok {
			if p, err := peerOf(n); err == nil {
				o.Set(n.Name, p)
			} else {
				o.Remove(n.Name)
			}
		}
	}
	lw := &cache.ListWatch{
		ListFunc:  func(opts metav1.ListOptions) (runtime.Object, error) { return all.List(ctx, opts) },
		WatchFunc: func(opts metav1.ListOptions) (watch.Interface, error) { return all.Watch(ctx, opts) },
	}
	inf := cache.NewSharedIndexInformer(lw, &corev1.Node{}, 10*time.Minute, cache.Indexers{})
	inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    set,
		UpdateFunc: func(_, obj any) { set(obj) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if n, ok := obj.(*corev1.Node); ok {
				o.Remove(n.Name)
			}
		},
	})
	inf.Run(ctx.Done())
	return nil
}

// waitPodCIDR waits until the controller manager has given this node its
// pod CIDR, saying so when what it waits on changes.
func (a *Agent) waitPodCIDR(ctx context.Context) (*net.IPNet, error) {
	var last string
	for {
		n, err := a.kubelet.CoreV1().Nodes().Get(ctx, a.Node.Name, metav1.GetOptions{})
		if err == nil && n.Spec.PodCIDR != "" {
			_, cidr, err := net.ParseCIDR(n.Spec.PodCIDR)
			return cidr, err
		}
		msg := "no pod CIDR assigned yet"
		if err != nil {
			msg = err.Error()
		}
		if msg != last {
			a.Log.Info("pod network waits for the node's pod CIDR", "node", a.Node.Name, "status", msg)
			last = msg
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

// peerOf says where a Node's pods are, once it has a pod CIDR, an IPv4
// InternalIP and a published VXLAN MAC.
func peerOf(n *corev1.Node) (overlay.Peer, error) {
	_, cidr, err := net.ParseCIDR(n.Spec.PodCIDR)
	if err != nil {
		return overlay.Peer{}, err
	}
	mac, err := net.ParseMAC(n.Annotations[overlay.MACAnnotation])
	if err != nil {
		return overlay.Peer{}, err
	}
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			if ip := net.ParseIP(a.Address); ip != nil && ip.To4() != nil {
				return overlay.Peer{CIDR: cidr, IP: ip.To4(), MAC: mac}, nil
			}
		}
	}
	return overlay.Peer{}, errors.New("no IPv4 InternalIP")
}
