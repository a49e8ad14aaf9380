// Package agent runs the node side of a Cairn cluster: containerd (with
// Debian's runc and CNI plugins from the image), and the kubelet on cgroup v2
// with kube-proxy, supervised child processes of cairnd (containerd in one,
// the kubelet and kube-proxy together in another, or each in its own when
// the image carries upstream programs). It imports the
// images baked into the root (the pause image and the config's images:)
// before the kubelet starts, so no registry is needed to come up, and
// reports when its node is Ready.
//
// Pod networking: containerd writes the CNI config from a template once
// the kubelet hands it the node's pod CIDR (allocated by the controller
// manager): a bridge with host-local addresses and portmap.
package agent
