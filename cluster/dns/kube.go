package dns

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Watch keeps recs in step with the cluster's Services until ctx ends.
func Watch(ctx context.Context, cs kubernetes.Interface, recs *Records) {
	f := informers.NewSharedInformerFactory(cs, 0)
	inf := f.Core().V1().Services().Informer()
	set := func(obj any) {
		svc, ok := obj.(*corev1.Service)
		if !ok {
			return
		}
		var ips []net.IP
		for _, s := range svc.Spec.ClusterIPs {
			if ip := net.ParseIP(s); ip != nil {
				ips = append(ips, ip)
			}
		}
		recs.Set(svc.Name, svc.Namespace, ips)
	}
	inf.AddEventHandler(handlers(set, func(obj any) {
		if svc, ok := obj.(*corev1.Service); ok {
			recs.Set(svc.Name, svc.Namespace, nil)
		}
	}))
	f.Start(ctx.Done())
}

// handlers calls set for each object added or changed and gone for each
// deleted (also when the informer only learnt of it late).
func handlers(set, gone func(obj any)) cache.ResourceEventHandlerFuncs {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    set,
		UpdateFunc: func(_, obj any) { set(obj) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			gone(obj)
		},
	}
}

// WatchNodes keeps the nodes' addresses in c until ctx ends.
func WatchNodes(ctx context.Context, cs kubernetes.Interface, c *Clients) {
	f := informers.NewSharedInformerFactory(cs, 0)
	inf := f.Core().V1().Nodes().Informer()
	set := func(obj any) {
		if n, ok := obj.(*corev1.Node); ok {
			c.SetNode(n.Name, nodeAddrs(n))
		}
	}
	inf.AddEventHandler(handlers(set, func(obj any) {
		if n, ok := obj.(*corev1.Node); ok {
			c.SetNode(n.Name, nil)
		}
	}))
	f.Start(ctx.Done())
}

// nodeAddrs are a node's IP addresses (internal and external).
func nodeAddrs(n *corev1.Node) []netip.Addr {
	var out []netip.Addr
	for _, a := range n.Status.Addresses {
		if a.Type != corev1.NodeInternalIP && a.Type != corev1.NodeExternalIP {
			continue
		}
		if ip, err := netip.ParseAddr(a.Address); err == nil {
			out = append(out, ip.Unmap())
		}
	}
	return out
}

// Names of the objects that route pods' queries to the servers.
const (
	ServiceName   = "kube-dns"
	SliceName     = "kube-dns-cairn"
	ManagedBy     = "cairn-server"
	portName      = "dns"
	portNameTCP   = "dns-tcp"
	namespaceKube = "kube-system"
)

// EnsureService makes the kube-dns Service at clusterIP (no selector: its
// endpoints are the servers) and an EndpointSlice with this server's
// address. Existing objects are updated to match.
func EnsureService(ctx context.Context, cs kubernetes.Interface, clusterIP string, self net.IP, log *slog.Logger) error {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: ServiceName, Namespace: namespaceKube,
			Labels: map[string]string{"k8s-app": "kube-dns", "kubernetes.io/name": "CairnDNS"}},
		Spec: corev1.ServiceSpec{
			ClusterIP: clusterIP,
			Ports: []corev1.ServicePort{
				{Name: portName, Protocol: corev1.ProtocolUDP, Port: 53, TargetPort: intstr.FromInt32(53)},
				{Name: portNameTCP, Protocol: corev1.ProtocolTCP, Port: 53, TargetPort: intstr.FromInt32(53)},
			},
		},
	}
	// Look first: with a fixed cluster IP, creating an existing Service
	// fails on the address, not the name.
	svcs := cs.CoreV1().Services(namespaceKube)
	if _, err := svcs.Get(ctx, ServiceName, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		if _, err := svcs.Create(ctx, svc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating the %s Service: %w", ServiceName, err)
		}
	} else if err != nil {
		return err
	}
	udp, tcp := corev1.ProtocolUDP, corev1.ProtocolTCP
	p53 := int32(53)
	names := []string{portName, portNameTCP}
	ready := true
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: SliceName, Namespace: namespaceKube, Labels: map[string]string{
			discoveryv1.LabelServiceName: ServiceName, discoveryv1.LabelManagedBy: ManagedBy}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{self.String()}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
		Ports:       []discoveryv1.EndpointPort{{Name: &names[0], Protocol: &udp, Port: &p53}, {Name: &names[1], Protocol: &tcp, Port: &p53}},
	}
	slices := cs.DiscoveryV1().EndpointSlices(namespaceKube)
	old, err := slices.Get(ctx, SliceName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = slices.Create(ctx, slice, metav1.CreateOptions{})
	case err == nil:
		slice.ResourceVersion = old.ResourceVersion
		_, err = slices.Update(ctx, slice, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("the %s EndpointSlice: %w", SliceName, err)
	}
	log.Info("cluster DNS", "service", clusterIP, "endpoint", self.String())
	return nil
}
